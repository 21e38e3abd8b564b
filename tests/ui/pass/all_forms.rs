//! Every dataset macro with every option it takes, on sync, async, private and `pub` fns.

use lakeflow::prelude::*;

/// Raw orders; the doc comment and `#[allow]` stay on the function.
#[allow(clippy::unnecessary_wraps)]
#[streaming_table(
    name = "bronze_orders",
    comment = "Raw orders",
    partition_cols = ["order_date"],
    table_properties = {"delta.appendOnly": "true"},
)]
fn bronze() -> Plan {
    read("landing_orders")
}

#[table(
    table_properties = {"delta.appendOnly": "false", "owner": "data-eng"},
    partition_cols = ["order_date", "country"],
    comment = "Orders without test rows",
    name = "silver_orders"
)]
fn silver() -> Plan {
    Ok(read("bronze_orders")?.filter(col("status").not_eq(lit("test")))?)
}

#[table]
fn plain_table() -> Plan {
    read("silver_orders")
}

#[materialized_view(
    name = "gold_daily_revenue",
    comment = "Revenue per day and country",
    partition_cols = ["order_date"],
    table_properties = {"k": "v"}
)]
async fn gold() -> Plan {
    sql("SELECT order_date, country, sum(amount) AS revenue FROM silver_orders GROUP BY 1, 2")
}

#[temporary_view(name = "eu_orders", comment = "Orders placed in Europe")]
fn eu() -> Plan {
    Ok(read("silver_orders")?.filter(col("region").eq(lit("EU")))?)
}

mod nested {
    use lakeflow::prelude::*;

    #[materialized_view]
    pub fn customers() -> Plan {
        read("raw_customers")
    }

    #[temporary_view]
    pub(crate) async fn r#match() -> Plan {
        Ok(read("customers")?)
    }

    #[streaming_table(comment = "private and async, in a module")]
    async fn private_stream() -> Plan {
        let df = read("bronze_orders")?;
        Ok(df)
    }
}

fn main() {}

create_streaming_table!(
    "all_regions",
    comment = "Orders of every region",
    partition_cols = ["region"],
    table_properties = {"owner": "data-eng"},
);

#[append_flow(target = "all_regions", comment = "Orders as they arrive")]
fn all_regions_live() -> Plan {
    Ok(read_stream("bronze_orders")?.select(vec![col("region"), col("amount")])?)
}

#[append_flow(target = "all_regions", name = "all_regions_backfill", once = true)]
async fn backfill() -> Plan {
    sql("SELECT 'US' AS region, CAST(1 AS BIGINT) AS amount")
}
