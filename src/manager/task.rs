//! Task-level authentication: the place for `authenticate_for_task`, which
//! will choose an account for an agent's task (the selector, writing
//! `selection_history` rows with origin `selector`), reserve the task's share
//! in the quota ledger, and hand out that account's credential.
//!
//! Nothing lives here yet: until it does, callers name an account themselves
//! and use [`Manager::token`](super::Manager::token).
