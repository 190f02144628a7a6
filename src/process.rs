//! Which process holds an agent session, and whether it is still alive.
//!
//! A pid alone is not an identity: the kernel hands a freed pid to the next
//! process that starts. On Linux a process is therefore named by its pid and
//! its start time (clock ticks since boot, field 22 of `/proc/PID/stat`),
//! and it is alive only while a process with that pid *and* that start time
//! exists. Elsewhere the start time is unknown and a signal-0 probe decides.

use serde::Serialize;

/// A process: pid, start time when the system tells it, and host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessRef {
    /// The process id.
    pub pid: u32,
    /// Start time in clock ticks since boot (Linux), guarding against pid reuse.
    #[serde(rename = "pid_start")]
    pub start: Option<u64>,
    /// The host it runs on: only processes of this host can be checked.
    pub host: String,
}

impl ProcessRef {
    /// The calling process.
    #[must_use]
    pub fn current() -> Self {
        Self::of(std::process::id())
    }

    /// The process `pid` on this host, with its start time read now.
    #[must_use]
    pub fn of(pid: u32) -> Self {
        Self {
            pid,
            start: start_time(pid),
            host: host(),
        }
    }

    /// The parent of the calling process (the shell that runs `vault env`).
    #[must_use]
    pub fn parent() -> Self {
        let pid = rustix::process::getppid().map_or(1, |p| p.as_raw_nonzero().get().unsigned_abs());
        Self::of(pid)
    }

    /// The same process, on the host named `host` (the CLI's
    /// `AUTHVAULT_HOST`, which may differ from the node name).
    #[must_use]
    pub fn on(self, host: &str) -> Self {
        Self {
            host: host.to_owned(),
            ..self
        }
    }

    /// Whether the process still runs, asked on this host ([`host`]). See
    /// [`ProcessRef::is_alive_on`].
    #[must_use]
    pub fn is_alive(&self) -> bool {
        self.is_alive_on(&host())
    }

    /// Whether the process still runs, asked on the host named `here`. A
    /// process of another host counts as alive: nothing here can tell.
    #[must_use]
    pub fn is_alive_on(&self, here: &str) -> bool {
        if self.host != here {
            return true;
        }
        match (self.start, start_time(self.pid)) {
            (Some(then), Some(now)) => then == now,
            (Some(_), None) => false,
            (None, _) => exists(self.pid),
        }
    }
}

/// Whether a process `pid` exists now (signal 0: delivered to nothing, it
/// only asks). One of another user counts as existing.
#[must_use]
pub fn exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// The name [`set_host`] gave this host, if any.
static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names this host for the rest of the process (the CLI's `AUTHVAULT_HOST`,
/// set once at start): the default host of a store, of its audit entries and
/// of the sessions it opens. The first call wins.
pub fn set_host(name: String) {
    let _ = HOST.set(name);
}

/// This host's name: the one [`set_host`] gave, else the node name.
#[must_use]
pub fn host() -> String {
    HOST.get().cloned().unwrap_or_else(node_name)
}

/// The machine's node name (`uname -n`).
#[must_use]
pub fn node_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Field 22 of `/proc/PID/stat`; `None` when there is no such process (or no `/proc`).
fn start_time(pid: u32) -> Option<u64> {
    parse_start(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_start(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold anything,
    // spaces and parentheses included: count fields after its last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_process_is_alive_and_a_reused_pid_is_not() {
        let me = ProcessRef::current();
        assert!(me.start.is_some(), "Linux has /proc");
        assert!(me.is_alive());
        let reused = ProcessRef {
            start: me.start.map(|s| s + 1),
            ..me.clone()
        };
        assert!(
            !reused.is_alive(),
            "same pid, other start time: another process"
        );
    }

    #[test]
    fn an_exited_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let p = ProcessRef::of(child.id());
        child.wait().unwrap();
        assert!(!p.is_alive());
    }

    #[test]
    fn a_process_of_another_host_counts_as_alive() {
        let p = ProcessRef {
            pid: u32::MAX,
            start: Some(1),
            host: format!("{}-elsewhere", host()),
        };
        assert!(p.is_alive());
    }

    #[test]
    fn a_process_is_checked_only_on_the_host_it_is_named_after() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let p = ProcessRef::of(child.id()).on("b");
        child.wait().unwrap();
        assert_eq!(p.host, "b");
        assert!(p.is_alive_on("a"), "a cannot tell whether b's process runs");
        assert!(!p.is_alive_on("b"));
    }

    #[test]
    fn a_command_name_with_parentheses_and_spaces_is_skipped() {
        // Field 22 is counted after the last `)`, whatever the name holds.
        let stat =
            "42 (a) b (c) d) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start(stat), Some(987_654));
    }
}
