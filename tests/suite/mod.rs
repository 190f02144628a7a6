mod audit_tamper;
mod canary;
mod cli;
mod common;
mod concurrency;
mod keyring;
mod rekey_crash;
mod sealing;
