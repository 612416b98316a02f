//! The period ledger and the publish history on DynamoDB (moto): the conditional writes that
//! make one automatic publish per partner and period (R-USE-6) and keep ten operations (R-USE-8).

use chrono::{NaiveDate, Utc};
use domain::ports::{PublishRecord, PublishResult, PublishTrigger};
use e2e::*;

const PARTNER: &str = "acme";

fn slot(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[tokio::test]
async fn r_use_6_two_runs_racing_for_one_period_one_claims_it_and_done_stays_done() {
    let w = World::new().await;
    let store = &w.deps.store;
    let nov = slot("2026-12-01");
    assert_eq!(store.last_publish(PARTNER).await.unwrap(), None);
    assert!(store
        .claim_publish(PARTNER, nov, "run-a", 900)
        .await
        .unwrap());
    assert!(
        !store
            .claim_publish(PARTNER, nov, "run-b", 900)
            .await
            .unwrap(),
        "another run holds it"
    );
    // The holder may claim again (a retried request); the other may not end it.
    assert!(store
        .claim_publish(PARTNER, nov, "run-a", 900)
        .await
        .unwrap());
    assert!(store
        .finish_publish(PARTNER, nov, "run-b", true)
        .await
        .is_err());
    store
        .finish_publish(PARTNER, nov, "run-a", true)
        .await
        .unwrap();
    assert_eq!(store.last_publish(PARTNER).await.unwrap(), Some(nov));
    for owner in ["run-a", "run-b"] {
        assert!(
            !store.claim_publish(PARTNER, nov, owner, 900).await.unwrap(),
            "published: never again ({owner})"
        );
    }
    // A failed attempt gives the slot back: the next tick claims it (R-USE-10).
    let dec = slot("2027-01-01");
    assert!(store
        .claim_publish(PARTNER, dec, "run-c", 900)
        .await
        .unwrap());
    store
        .finish_publish(PARTNER, dec, "run-c", false)
        .await
        .unwrap();
    assert_eq!(store.last_publish(PARTNER).await.unwrap(), Some(nov));
    assert!(store
        .claim_publish(PARTNER, dec, "run-d", 900)
        .await
        .unwrap());
}

#[tokio::test]
async fn r_use_8_the_history_keeps_the_ten_newest_operations() {
    let w = World::new().await;
    let store = &w.deps.store;
    let start = Utc::now();
    for n in 0..12 {
        let at = start + chrono::Duration::minutes(n);
        let rec = PublishRecord {
            run_id: format!("run-{n}"),
            started_at: at,
            finished_at: at,
            trigger: PublishTrigger::Manual {
                initiator: "finance@acme.example".into(),
            },
            period: "2026-11".into(),
            slot: None,
            dry_run: false,
            result: PublishResult::Published,
            error: None,
            companies: vec![],
            omitted: 0,
        };
        store.record_publish(PARTNER, &rec).await.unwrap();
    }
    let h = store.publish_history(PARTNER).await.unwrap();
    let ids: Vec<&str> = h.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(
        ids,
        (2..12)
            .rev()
            .map(|n| format!("run-{n}"))
            .collect::<Vec<_>>(),
        "newest first, the two oldest gone"
    );
}
