//! `vault rekey` killed with SIGKILL at random points leaves every value
//! readable, under the old key or the new one.

use std::time::{Duration, Instant};

use authvault::model::Provider;
use authvault::store::AccountSelector;
use secrecy::ExposeSecret;

use super::common::{Rng, TempVault, api_key_account, oauth_account, ok, seed};

#[test]
fn rekey_killed_at_random_points_fifty_times_leaves_every_value_readable() {
    let tv = TempVault::new();
    let mut store = tv.init_passphrase();
    for i in 0..150 {
        store
            .add_account(&api_key_account(
                Provider::Claude,
                &format!("k{i}"),
                &format!("sk-ant-{i}"),
            ))
            .expect("add");
        store
            .add_account(&oauth_account(&format!("o{i}"), "REKEY"))
            .expect("add");
    }
    let values = store.verify_sealed().expect("sealed");
    drop(store);

    // One undisturbed run sizes the window in which kills land (a measurement, not an assertion).
    let start = Instant::now();
    ok(&mut tv.cmd_pw(&["rekey"]));
    let window = start.elapsed().as_millis().max(20) as u64 * 5 / 4;

    let mut rng = Rng::new(seed("rekey kills"));
    let (mut old, mut new) = (0, 0);
    for run in 0..50 {
        let before = tv.open_passphrase().key_ids();
        let mut child = tv
            .cmd_pw(&["rekey"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(rng.below(window)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();

        let mut store = tv.open_passphrase();
        let after = store.key_ids();
        assert_eq!(
            after.len(),
            1,
            "run {run}: exactly one data key in force, got {after:?}"
        );
        if after == before {
            old += 1;
        } else {
            new += 1;
        }
        assert_eq!(
            store
                .verify_sealed()
                .unwrap_or_else(|e| panic!("run {run}: {e}")),
            values,
            "run {run}"
        );
        let i = rng.below(150);
        let token = store
            .token(AccountSelector {
                label: Some(&format!("k{i}")),
                provider: None,
            })
            .expect("token");
        assert_eq!(
            token.secret.expose_secret(),
            format!("sk-ant-{i}"),
            "run {run}"
        );
        assert_eq!(
            store.verify_audit().expect("audit").state,
            authvault::store::ChainState::Intact,
            "run {run}"
        );
    }
    eprintln!("rekey kills: {old} runs left the old key, {new} the new one (window {window} ms)");
}
