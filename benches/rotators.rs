//! Rotator wall time: each step of one rotation (create, set, test, finish) through the built-in
//! `openbao-userpass` and `aws-iam-access-key` plugins against their real peers (an OpenBao dev
//! server; a moto server checking signatures), through the full host path (fresh store per step,
//! the sandbox's HTTP client). `ROUNDS` rotations (default 20) after one warm-up; per step the
//! median, the 90th percentile and the maximum.
//!
//! Run: `cargo bench --bench rotators` (needs `scripts/setup-peers.sh`).

#[path = "../tests/peers/mod.rs"]
mod peers;
#[path = "../tests/plugin_support/mod.rs"]
mod plugin_support;

mod support;

use std::time::{Duration, Instant};

use opsync::connect::model::{Category, IdRef, Item};
use opsync::plugin::{NewValue, Plugin, Rotation, RotationStep, VaultRef};
use peers::{AccessKey, Bao, Moto, rotator};
use plugin_support::{field, host, secret};
use serde_json::json;

const STEPS: [RotationStep; 4] = [
    RotationStep::Create,
    RotationStep::Set,
    RotationStep::Test,
    RotationStep::Finish,
];

fn item(fields: &[(&str, &str)]) -> Item {
    let mut item = Item::new("bench", Category::from("LOGIN"));
    item.id = "itm0000000000000000000000b".into();
    item.vault = IdRef {
        id: "vlt0000000000000000000000a".into(),
    };
    item.fields = Some(fields.iter().map(|(l, v)| field(l, l, v)).collect());
    item
}

fn rotation(key: &str, item: Item, pending: &[(&str, &str)]) -> Rotation {
    Rotation {
        idempotency_key: key.to_string(),
        vault: VaultRef {
            id: item.vault.id.clone(),
            name: "Bench".into(),
        },
        item,
        pending: pending
            .iter()
            .map(|(f, v)| NewValue {
                field: f.to_string(),
                value: secret(v),
            })
            .collect(),
    }
}

/// Runs one step and returns what it made and how long it took.
async fn timed(plugin: &Plugin, step: RotationStep, r: &Rotation) -> (Vec<NewValue>, Duration) {
    let started = Instant::now();
    let out = plugin
        .rotate(step, r)
        .await
        .unwrap_or_else(|e| panic!("{step:?}: {e}"));
    (out, started.elapsed())
}

async fn openbao_round(
    bao_plugin: &Plugin,
    round: usize,
    current: &str,
) -> (String, [Duration; 4]) {
    let key = format!("bench-{round}");
    let next = format!("bench-password-{round:04}");
    let it = item(&[("username", "bench"), ("password", current)]);
    let (_, create) = timed(bao_plugin, STEPS[0], &rotation(&key, it.clone(), &[])).await;
    let pending = rotation(&key, it, &[("password", &next)]);
    let (_, set) = timed(bao_plugin, STEPS[1], &pending).await;
    let (_, test) = timed(bao_plugin, STEPS[2], &pending).await;
    let (_, finish) = timed(bao_plugin, STEPS[3], &pending).await;
    (next, [create, set, test, finish])
}

async fn aws_round(
    plugin: &Plugin,
    round: usize,
    current: &AccessKey,
) -> (AccessKey, [Duration; 4]) {
    let key = format!("bench-{round}");
    let it = item(&[
        ("access key id", &current.id),
        ("secret access key", &current.secret),
    ]);
    let (made, create) = timed(plugin, STEPS[0], &rotation(&key, it.clone(), &[])).await;
    let new = AccessKey {
        id: made[0].value.expose().to_string(),
        secret: made[1].value.expose().to_string(),
    };
    let pending = rotation(
        &key,
        it,
        &[
            ("access key id", &new.id),
            ("secret access key", &new.secret),
        ],
    );
    let (_, set) = timed(plugin, STEPS[1], &pending).await;
    let (_, test) = timed(plugin, STEPS[2], &pending).await;
    let (_, finish) = timed(plugin, STEPS[3], &pending).await;
    (new, [create, set, test, finish])
}

fn report(name: &str, samples: &[[Duration; 4]]) {
    println!("{name} ({} rotations):", samples.len());
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut totals: Vec<Duration> = samples.iter().map(|s| s.iter().sum()).collect();
    for (i, step) in ["create", "set", "test", "finish"].iter().enumerate() {
        let mut times: Vec<Duration> = samples.iter().map(|s| s[i]).collect();
        times.sort();
        println!(
            "  {step:<7} median {:7.2} ms   p90 {:7.2} ms   max {:7.2} ms",
            ms(times[times.len() / 2]),
            ms(times[(times.len() * 9 / 10).min(times.len() - 1)]),
            ms(times[times.len() - 1]),
        );
    }
    totals.sort();
    println!(
        "  whole   median {:7.2} ms   max {:7.2} ms",
        ms(totals[totals.len() / 2]),
        ms(totals[totals.len() - 1])
    );
}

fn main() {
    let rounds = support::env_or("ROUNDS", 20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let host = host();

        let bao = Bao::start().await;
        let (status, _) = bao
            .call(
                "POST",
                "sys/auth/userpass",
                Some(json!({ "type": "userpass" })),
            )
            .await;
        assert_eq!(status, 204);
        let (status, _) = bao
            .call(
                "POST",
                "auth/userpass/users/bench",
                Some(json!({ "password": "bench-password-start" })),
            )
            .await;
        assert_eq!(status, 204);
        let plugin = rotator(
            &host,
            "openbao-userpass",
            &[("address", &bao.address), ("token", Bao::TOKEN)],
            &bao.address,
        );
        let mut current = "bench-password-start".to_string();
        let mut samples = Vec::new();
        for round in 0..=rounds {
            let (next, times) = openbao_round(&plugin, round, &current).await;
            current = next;
            if round > 0 {
                samples.push(times);
            }
        }
        report("openbao-userpass against OpenBao (dev server)", &samples);
        drop(bao);

        let moto = Moto::start_with_no_auth_calls(5).await;
        let admin = moto.user_with_key("bench-admin").await;
        moto.allow("bench-admin", &["iam:*"]).await;
        let mut current = moto.user_with_key("bench").await;
        let plugin = rotator(
            &host,
            "aws-iam-access-key",
            &[
                ("endpoint", &moto.endpoint),
                ("access-key-id", &admin.id),
                ("secret-access-key", &admin.secret),
                ("user-name", "bench"),
            ],
            &moto.endpoint,
        );
        let mut samples = Vec::new();
        for round in 0..=rounds {
            let (next, times) = aws_round(&plugin, round, &current).await;
            current = next;
            if round > 0 {
                samples.push(times);
            }
        }
        report(
            "aws-iam-access-key against moto (signatures checked)",
            &samples,
        );
        assert!(moto.access_keys("bench").await.len() <= 2);
    });
}
