//! The shared NGSI-LD document suite: the behaviour every [`LdStore`]
//! backend must show. A backend crate runs it with one line:
//!
//! ```ignore
//! panorama_store::ld_store_tests!(async { make_fresh_store().await });
//! ```

// Test code: a failed expectation must fail the test, loudly and with context.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::testsuite::t;
use crate::{LdDocument, LdSubscription, SharedLdStore, SharedStore};
use serde_json::json;

/// Expands to one `#[tokio::test]` per behaviour of the NGSI-LD suite, in a
/// module `ld_store_suite`.
#[macro_export]
macro_rules! ld_store_tests {
    ($make:expr) => {
        $crate::ld_store_tests!(@each $make;
            documents_round_trip_exactly,
            replacing_and_tombstones,
            batches_are_listed_in_id_order,
            subscriptions_round_trip_replace_and_delete,
        );
    };
    (@each $make:expr; $($name:ident),+ $(,)?) => {
        mod ld_store_suite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture: $crate::testsuite::Fixture = ($make).await.into();
                    $crate::ld_testsuite::$name(fixture.store.clone()).await;
                    fixture.finish().await;
                }
            )+
        }
    };
}

fn ld(store: SharedStore) -> SharedLdStore {
    store.as_ld().expect("this backend keeps NGSI-LD documents")
}

fn doc(id: &str, body: serde_json::Value) -> LdDocument {
    LdDocument {
        id: id.into(),
        doc: Some(body),
        created_at: t("2026-01-01T00:00:00Z"),
        modified_at: t("2026-01-02T00:00:00Z"),
    }
}

/// A document comes back exactly as given, with its times.
pub async fn documents_round_trip_exactly(store: SharedStore) {
    let ld = ld(store);
    assert_eq!(ld.ld_document("urn:ngsi-ld:X:1").await.unwrap(), None);
    let body = json!({
        "id": "urn:ngsi-ld:X:1",
        "type": ["https://example.org/A", "https://example.org/B"],
        "https://example.org/rel": [
            {"type": "Relationship", "object": "urn:ngsi-ld:Y:1", "datasetId": "urn:d:1"},
            {"type": "Relationship", "object": "urn:ngsi-ld:Y:2"}
        ],
        "https://example.org/name": {"type": "LanguageProperty", "languageMap": {"vi": "Cầu", "en": "Bridge"}},
        "https://example.org/n": {"type": "Property", "value": 1.5e300, "https://example.org/sub": {"type": "Property", "value": [1, {"a": null}]}}
    });
    ld.put_ld_documents(&[doc("urn:ngsi-ld:X:1", body.clone())])
        .await
        .unwrap();
    let got = ld.ld_document("urn:ngsi-ld:X:1").await.unwrap().unwrap();
    assert_eq!(got, doc("urn:ngsi-ld:X:1", body));
}

/// A put replaces the document; a tombstone keeps the id with no document.
pub async fn replacing_and_tombstones(store: SharedStore) {
    let ld = ld(store);
    ld.put_ld_documents(&[doc("urn:ngsi-ld:X:1", json!({"v": 1}))])
        .await
        .unwrap();
    ld.put_ld_documents(&[doc("urn:ngsi-ld:X:1", json!({"v": 2}))])
        .await
        .unwrap();
    let got = ld.ld_document("urn:ngsi-ld:X:1").await.unwrap().unwrap();
    assert_eq!(got.doc, Some(json!({"v": 2})));
    let mut tomb = doc("urn:ngsi-ld:X:1", json!(null));
    tomb.doc = None;
    tomb.modified_at = t("2026-01-03T00:00:00Z");
    ld.put_ld_documents(std::slice::from_ref(&tomb))
        .await
        .unwrap();
    assert_eq!(ld.ld_document("urn:ngsi-ld:X:1").await.unwrap(), Some(tomb));
}

/// Listing returns every document and tombstone in id order.
pub async fn batches_are_listed_in_id_order(store: SharedStore) {
    let ld = ld(store);
    let mut tomb = doc("urn:ngsi-ld:X:2", json!(null));
    tomb.doc = None;
    ld.put_ld_documents(&[
        doc("urn:ngsi-ld:X:3", json!({"n": 3})),
        doc("urn:ngsi-ld:X:1", json!({"n": 1})),
        tomb,
    ])
    .await
    .unwrap();
    let all = ld.ld_documents().await.unwrap();
    let ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        ["urn:ngsi-ld:X:1", "urn:ngsi-ld:X:2", "urn:ngsi-ld:X:3"]
    );
    assert!(all[1].doc.is_none());
}

/// A subscription comes back as stored, is replaced in place, is listed in
/// id order, and is gone (and says so) once deleted.
pub async fn subscriptions_round_trip_replace_and_delete(store: SharedStore) {
    let subs = store
        .as_ld_subscriptions()
        .expect("this backend keeps NGSI-LD subscriptions");
    assert_eq!(
        subs.ld_subscription("urn:ngsi-ld:Subscription:b")
            .await
            .unwrap(),
        None
    );
    let b = LdSubscription {
        id: "urn:ngsi-ld:Subscription:b".into(),
        doc: json!({"type": "Subscription", "entities": [{"type": "T"}], "q": "a>1"}),
        created_at: t("2026-01-01T00:00:00Z"),
        modified_at: t("2026-01-01T00:00:00Z"),
    };
    let a = LdSubscription {
        id: "urn:ngsi-ld:Subscription:a".into(),
        doc: json!({"type": "Subscription", "isActive": false}),
        ..b.clone()
    };
    subs.put_ld_subscription(&b).await.unwrap();
    subs.put_ld_subscription(&a).await.unwrap();
    assert_eq!(subs.ld_subscription(&b.id).await.unwrap(), Some(b.clone()));
    let changed = LdSubscription {
        doc: json!({"type": "Subscription", "q": "a>2"}),
        modified_at: t("2026-01-03T00:00:00Z"),
        ..b.clone()
    };
    subs.put_ld_subscription(&changed).await.unwrap();
    let all = subs.ld_subscriptions().await.unwrap();
    assert_eq!(all, vec![a.clone(), changed]);
    assert!(subs.delete_ld_subscription(&b.id).await.unwrap());
    assert!(!subs.delete_ld_subscription(&b.id).await.unwrap());
    assert_eq!(subs.ld_subscriptions().await.unwrap(), vec![a]);
}
