//! Every expectation attribute under a dataset attribute, and quarantine in both forms.

use lakeflow::prelude::*;

#[table(name = "checked_orders", quarantine = true)]
#[lakeflow::expect("not_cancelled", "status <> 'cancelled'")]
#[expect_or_warn("recent", "order_date >= '2026-01-01'")]
#[expect_or_drop("positive_amount", "amount > 0")]
#[expect_or_fail("has_id", "id IS NOT NULL")]
#[expect_all({"small_amount": "amount < 1000000", "has_status": "status IS NOT NULL"})]
#[expect_all_or_drop({"non_negative_id": "id >= 0"})]
#[expect_all_or_fail({"bounded_id": "id < 1000000"})]
#[expect_unique("id_status", ["id", "status"])]
#[expect_unique_or_drop("pk", ["id"])]
#[expect_unique_or_fail("id_amount", ["id", "amount"])]
fn checked() -> Plan {
    read("raw_checked_orders")
}

/// Lint attributes stay on the function; the rules go to the record.
#[materialized_view(quarantine = "rejected_checked_orders")]
#[allow(clippy::needless_question_mark)]
#[expect_or_drop("paid", "status = 'paid'")]
fn checked_paid() -> Plan {
    Ok(read("checked_orders")?)
}

fn main() {}
