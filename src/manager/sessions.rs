//! Agent sessions: the live ones, after closing those whose process died
//! (their open reservations are released with them).

use super::Manager;
use crate::error::Result;
use crate::store::Session;

impl Manager {
    /// The live agent sessions. Sessions whose process is gone are closed
    /// first and their open reservations released; the others are marked
    /// seen now.
    ///
    /// # Errors
    /// Store errors.
    pub fn sessions(&mut self) -> Result<Vec<Session>> {
        let live = self.close_dead_sessions()?;
        self.store
            .touch_sessions(&live.iter().map(|s| s.id).collect::<Vec<_>>())?;
        Ok(live)
    }

    /// Closes the sessions whose process is gone (releasing their open
    /// reservations); returns the others. Writes only when one is gone.
    /// Only this host's processes (the store's host name) can be checked;
    /// other hosts' sessions are left to them.
    pub(super) fn close_dead_sessions(&mut self) -> Result<Vec<Session>> {
        let here = self.store.host().to_owned();
        let (live, gone): (Vec<Session>, Vec<Session>) = self
            .store
            .open_sessions()?
            .into_iter()
            .partition(|s| s.process.is_alive_on(&here));
        self.store
            .close_sessions(&gone.iter().map(|s| s.id).collect::<Vec<_>>())?;
        Ok(live)
    }
}
