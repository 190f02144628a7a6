//! What users expect of a command-line tool: shell completions, a man page,
//! `--quiet`, and examples under `--help`.

use authvault::model::Provider;
use authvault::quota::{Period, Unit};
use authvault::store::Target;

use super::common::{TempVault, api_key_account, ok, stderr, stdout, with_stdin};

/// Subcommands every completion script and the man page must name.
const COMMANDS: [&str; 7] = [
    "login",
    "token",
    "exec",
    "policy",
    "completions",
    "man",
    "statusline",
];

#[test]
fn completions_for_bash_zsh_and_fish_name_the_subcommands() {
    let tv = TempVault::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout(&ok(&mut tv.cmd(&["completions", shell])));
        for command in COMMANDS {
            assert!(
                script.contains(command),
                "{shell} completions do not name `{command}`:\n{script}"
            );
        }
    }
    // The bash script is valid bash (on stdin: it is longer than one
    // command-line argument may be).
    let bash = stdout(&ok(&mut tv.cmd(&["completions", "bash"])));
    let check = with_stdin(
        std::process::Command::new("bash").arg("-n"),
        bash.as_bytes(),
    );
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn an_unknown_shell_is_refused_with_the_shells_that_exist() {
    let tv = TempVault::new();
    let out = tv.cmd(&["completions", "tcsh"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bash"), "{}", stderr(&out));
}

#[test]
fn the_man_page_is_roff_naming_the_commands() {
    let tv = TempVault::new();
    let page = stdout(&ok(&mut tv.cmd(&["man"])));
    assert!(page.contains(".TH vault 1"), "no roff title:\n{page}");
    assert!(page.contains(".SH NAME"), "no NAME section:\n{page}");
    for command in COMMANDS {
        assert!(
            page.contains(command),
            "the man page does not name `{command}`"
        );
    }
}

#[test]
fn help_shows_examples_of_the_common_tasks() {
    let tv = TempVault::new();
    let help = stdout(&ok(&mut tv.cmd(&["--help"])));
    for example in [
        "vault migrate",
        "vault login claude",
        "vault token --account",
        "vault exec -- codex",
        "vault env",
        "vault select",
    ] {
        assert!(help.contains(example), "--help lacks `{example}`:\n{help}");
    }
}

#[test]
fn quiet_silences_a_budget_notice_but_not_the_output() {
    let tv = TempVault::new();
    let mut store = tv.init_passphrase();
    store
        .add_account(&api_key_account(Provider::Claude, "work", "sk-work"))
        .expect("add");
    store
        .set_budget(Target::Account("work"), Unit::Tokens, Period::Day, 1_000)
        .expect("set budget");
    drop(store);
    // Crossing 80 % is noticed once per window: the loud run proves the
    // notice exists, the quiet run (crossing 95 %) that it is silenced.
    let loud = ok(&mut tv.cmd_pw(&["reserve", "--account", "work", "--tokens", "850"]));
    assert!(stderr(&loud).contains("notice:"), "{}", stderr(&loud));
    let quiet = ok(&mut tv.cmd_pw(&["--quiet", "reserve", "--account", "work", "--tokens", "100"]));
    assert_eq!(stderr(&quiet), "");
    assert!(
        !stdout(&quiet).trim().is_empty(),
        "the reservation id is still printed"
    );
    // And the notice of the quiet run was recorded: a loud run would have told it.
    let raw = tv.raw();
    let thresholds: Vec<i64> = raw
        .prepare("SELECT threshold FROM quota_notices ORDER BY id")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(thresholds, [80, 95]);
}
