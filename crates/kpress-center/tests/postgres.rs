//! The same store on a real PostgreSQL: the migrations, registration, filters, tokens,
//! the full ingest flow with its exact merge, and concurrent last signals, each on a
//! database of its own; then the data survives reopening the store.

use sqlx::Connection;

use crate::support::postgres::Postgres;
use crate::support::{TestCenter, TOKEN};

/// A center on a new database `name` of `pg`.
async fn center(pg: &Postgres, name: &str) -> TestCenter {
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&pg.url)
        .await
        .unwrap_or_else(|e| panic!("connect to PostgreSQL: {e}\n{}", pg.log_text()));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    let url = pg.url.replace("/postgres", &format!("/{name}"));
    TestCenter::open(kpress_center::Config::new(url, TOKEN), None).await
}

#[tokio::test]
async fn the_store_works_on_postgresql() {
    let pg = Postgres::start();
    crate::api::registration_is_idempotent(&center(&pg, "registration").await).await;
    crate::api::listing_filters(&center(&pg, "listing").await).await;
    crate::auth::tokens_are_checked(&center(&pg, "tokens").await).await;
    crate::ingest::concurrent_last_signals(&center(&pg, "race").await).await;

    let c = center(&pg, "flow").await;
    crate::ingest::full_flow(&c).await;
    let before = c.run("flow").await;
    let timeline = c.timeline("flow").await;
    c.store.close().await;
    // Reopening applies no migration twice and finds everything.
    let again = TestCenter::open(kpress_center::Config::new(c.db.clone(), TOKEN), None).await;
    assert_eq!(again.run("flow").await, before);
    assert_eq!(again.timeline("flow").await, timeline);
}
