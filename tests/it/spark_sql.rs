//! Spark SQL in pipelines: a SQL project written as Databricks users write it (Spark's
//! functions and datetime patterns, `"text"` strings, names in any case, `LEFT JOIN ..
//! USING`, non-ANSI casts, `* EXCEPT`, `GROUP BY ALL`, path tables) gives Spark's answers;
//! `SET spark.sql.ansi.enabled` switches casts to errors; errors in a query name the file's
//! line and column; functions of one's own are registered with `Pipeline::udf`.
//!
//! Expected values are Spark's (the same expressions are in `lakeflow-sql/tests/spark`,
//! whose results came from Spark 4.3).

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use lakeflow::prelude::*;
use lakeflow::project::Project;

use crate::sql_pipelines::{dry_run_error, project};
use crate::support::{delta_rows, sorted_lines};

const SPEC: &str = "name: spark\nstorage: out\nlibraries:\n  - glob:\n      include: sql/**\n";

const CUSTOMERS: &str = "CUST_ID,Name,Signup\n1,ann,2024-03-05\n2,bob,2023-12-31\n3,cy,\n";

const ORDERS: &str = "id,cust_id,amount,status\n10,1,5,ok\n11,1,,ok\n12,2,7,test\n13,4,3,ok\n";

async fn table(root: &Path, name: &str) -> Vec<String> {
    sorted_lines(&delta_rows(&root.join("out").join(name)).await)
}

#[tokio::test]
async fn a_sql_project_written_for_databricks_gives_sparks_answers() {
    let sql = r#"
CREATE MATERIALIZED VIEW customers AS
SELECT * FROM read_files('data/customers.csv', format => 'csv', header => true);

CREATE MATERIALIZED VIEW orders AS
SELECT * EXCEPT (_rescued_data) FROM read_files('data/orders.csv', format => 'csv', header => true);

-- Names in any case; "text" is a string; Spark's datetime patterns.
CREATE MATERIALIZED VIEW customer_days AS
SELECT cust_id, upper(NAME) AS Name, year(signup) AS signup_year,
       date_format(Signup, 'yyyyMMdd') AS day, date_format(signup, 'EEEE') AS weekday,
       CAST('' AS INT) AS empty_cast, "text" AS label
FROM customers;

-- LEFT JOIN .. USING keeps the left key for rows without a match.
CREATE MATERIALIZED VIEW orders_with_customers AS
SELECT * FROM orders o LEFT JOIN (SELECT cust_id, name FROM customers) c USING (cust_id)
WHERE status != "test";

CREATE MATERIALIZED VIEW revenue AS
SELECT name, count(*) AS orders, sum(amount) AS revenue
FROM orders_with_customers GROUP BY ALL;
"#;
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        ("sql/pipeline.sql", sql),
        ("data/customers.csv", CUSTOMERS),
        ("data/orders.csv", ORDERS),
    ]);
    Project::find(&root)
        .unwrap()
        .pipeline()
        .progress(ProgressMode::Off)
        .run()
        .await
        .unwrap();
    assert_eq!(
        table(&root, "customer_days").await,
        [
            "| cust_id | Name | signup_year | day      | weekday | empty_cast | label |",
            "| 1       | ANN  | 2024        | 20240305 | Tuesday |            | text  |",
            "| 2       | BOB  | 2023        | 20231231 | Sunday  |            | text  |",
            "| 3       | CY   |             |          |         |            | text  |",
        ]
    );
    assert_eq!(
        table(&root, "orders_with_customers").await,
        [
            "| cust_id | id | amount | status | name |",
            "| 1       | 10 | 5      | ok     | ann  |",
            "| 1       | 11 |        | ok     | ann  |",
            "| 4       | 13 | 3      | ok     |      |",
        ]
    );
    assert_eq!(
        table(&root, "revenue").await,
        [
            "| name | orders | revenue |",
            "|      | 1      | 3       |",
            "| ann  | 2      | 5       |",
        ]
    );
}

#[tokio::test]
async fn set_ansi_enabled_makes_a_bad_cast_fail_the_flow() {
    let sql = "CREATE MATERIALIZED VIEW lenient AS SELECT CAST('x' AS INT) AS n;\n\
               SET spark.sql.ansi.enabled = true;\n\
               CREATE MATERIALIZED VIEW strict AS SELECT CAST('x' AS INT) AS n;\n";
    let (_tmp, root) = project(&[("lakeflow.yml", SPEC), ("sql/a.sql", sql)]);
    let error = Project::find(&root)
        .unwrap()
        .pipeline()
        .progress(ProgressMode::Off)
        .run()
        .await
        .unwrap_err();
    let lakeflow::Error::RunFailed { report } = &error else {
        panic!("expected a failed run, got {error}");
    };
    assert_eq!(
        report.dataset("lenient").unwrap().status,
        lakeflow::FlowStatus::Completed
    );
    assert_eq!(
        report.dataset("strict").unwrap().status,
        lakeflow::FlowStatus::Failed
    );
    let reason = report.dataset("strict").unwrap().reason.clone().unwrap();
    assert!(reason.contains("CAST_INVALID_INPUT"), "{reason}");
}

#[tokio::test]
async fn a_syntax_error_in_a_query_names_its_place_in_the_file() {
    let sql = "-- orders\nCREATE MATERIALIZED VIEW a AS SELECT 1 AS x;\n\nCREATE MATERIALIZED VIEW b AS\n  SELECT x,\n    FROM a WHERE;\n";
    let (_tmp, root) = project(&[("lakeflow.yml", SPEC), ("sql/a.sql", sql)]);
    let error = dry_run_error(&root).await;
    assert!(error.contains("sql/a.sql:6:"), "{error}");
    assert!(!error.contains("Line: "), "{error}");
}

#[tokio::test]
async fn an_unknown_function_names_itself_and_a_registered_one_runs() {
    let sql = "CREATE MATERIALIZED VIEW labels AS SELECT ai_classify('great product') AS label;\n";
    let (_tmp, root) = project(&[("lakeflow.yml", SPEC), ("sql/a.sql", sql)]);
    let error = dry_run_error(&root).await;
    assert!(
        error.contains("`ai_classify` is not a function lakeflow knows"),
        "{error}"
    );
    assert!(
        !error.contains("Pipeline::"),
        "SQL users get no Rust advice: {error}"
    );

    // A stand-in model: labels every text "positive".
    let classify = create_udf(
        "ai_classify",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|_: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::from("positive"),
            ))
        }),
    );
    Project::find(&root)
        .unwrap()
        .pipeline()
        .udf(classify)
        .progress(ProgressMode::Off)
        .run()
        .await
        .unwrap();
    assert_eq!(
        table(&root, "labels").await,
        ["| label    |", "| positive |"]
    );
}

#[tokio::test]
async fn rust_pipelines_read_sql_in_sparks_dialect_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    Pipeline::builder()
        .materialized_view("t", || sql("SELECT \"a\" AS s, 7 DIV 2 AS q, 7 / 2 AS r"))
        .storage(dir.path().to_str().unwrap())
        .progress(ProgressMode::Off)
        .run()
        .await
        .unwrap();
    assert_eq!(
        sorted_lines(&delta_rows(&dir.path().join("t")).await),
        ["| s | q | r   |", "| a | 3 | 3.5 |"]
    );

    // DataFusion's dialect: "a" is a column, so this fails to plan.
    let error = Pipeline::builder()
        .sql_dialect(lakeflow::SqlDialect::DataFusion)
        .materialized_view("t", || sql("SELECT \"a\" AS s"))
        .storage_backend(Arc::new(lakeflow::MemoryStorage::new()))
        .dry_run()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("a"), "{error}");
}

#[tokio::test]
async fn a_databricks_notebook_export_runs_as_written() {
    // Cells instead of `;`, a `SET` that only shows a value, an informational primary key,
    // a CTE named with a leading digit, and a JSON file read by path.
    let notebook = "-- Databricks notebook source\n\
        -- MAGIC %md\n\
        -- MAGIC # Orders\n\
        \n\
        -- COMMAND ----------\n\
        \n\
        SET spark.source\n\
        \n\
        -- COMMAND ----------\n\
        \n\
        CREATE OR REFRESH MATERIALIZED VIEW raw_orders (\n\
          CONSTRAINT orders_pk PRIMARY KEY (id),\n\
          CONSTRAINT positive EXPECT (amount > 0) ON VIOLATION DROP ROW\n\
        )\n\
        AS SELECT * FROM json.`data/orders.json`\n\
        \n\
        -- COMMAND ----------\n\
        \n\
        CREATE OR REFRESH MATERIALIZED VIEW totals AS\n\
        WITH 12m_orders AS (SELECT * FROM raw_orders)\n\
        SELECT count(*) AS n, sum(amount) AS total FROM 12m_orders\n";
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        ("sql/orders.sql", notebook),
        (
            "data/orders.json",
            "{\"id\": 1, \"amount\": 5}\n{\"id\": 2, \"amount\": -1}\n{\"id\": 3, \"amount\": 2}\n",
        ),
    ]);
    Project::find(&root)
        .unwrap()
        .pipeline()
        .progress(ProgressMode::Off)
        .run()
        .await
        .unwrap();
    assert_eq!(
        table(&root, "totals").await,
        ["| n | total |", "| 2 | 7     |"]
    );
}

/// Idioms of published Databricks pipelines: an "unknown member" row in a later `UNION ALL`
/// branch (`SELECT -1, NULL, NULL`: names come from the first branch), keys declared on a
/// column, `boolean_col = "true"` in expectations and AUTO CDC conditions (the string is cast,
/// as in Spark), and `_metadata` over a file whose column names have capitals.
#[tokio::test]
async fn idioms_of_published_pipelines_run() {
    let sql = r#"
CREATE MATERIALIZED VIEW dim_customer (
  customer_key BIGINT NOT NULL PRIMARY KEY,
  name STRING,
  city STRING
) AS
SELECT 1L AS customer_key, 'ann' AS name, 'Paris' AS city
UNION ALL
SELECT -1, NULL, NULL;

CREATE MATERIALIZED VIEW fact_sale (
  customer_key BIGINT CONSTRAINT fk_customer FOREIGN KEY REFERENCES dim_customer,
  amount BIGINT,
  CONSTRAINT active EXPECT (active = "true") ON VIOLATION DROP ROW,
  active BOOLEAN
) AS SELECT * FROM VALUES (1L, 10L, true), (-1L, 5L, false) AS v(customer_key, amount, active);

CREATE MATERIALIZED VIEW changes AS
SELECT * FROM VALUES (1, false, 1), (1, true, 2), (2, false, 1) AS v(id, is_deleted, seq);
CREATE STREAMING TABLE current_ids;
APPLY CHANGES INTO current_ids FROM STREAM(changes) KEYS (id)
APPLY AS DELETE WHEN is_deleted = "true" SEQUENCE BY seq;

CREATE STREAMING TABLE readings AS
SELECT *, _metadata.file_name AS file FROM STREAM read_files('data/readings', format => 'json');
"#;
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        ("sql/pipeline.sql", sql),
        (
            "data/readings/r1.json",
            "{\"Sensor\": \"a\", \"Value\": 1}\n",
        ),
    ]);
    let report = crate::sql_pipelines::run(&root).await;
    assert!(report.succeeded(), "{report}");
    assert_eq!(
        table(&root, "dim_customer").await,
        [
            "| customer_key | name | city  |",
            "| -1           |      |       |",
            "| 1            | ann  | Paris |",
        ]
    );
    assert_eq!(
        table(&root, "fact_sale").await,
        [
            "| customer_key | amount | active |",
            "| 1            | 10     | true   |"
        ]
    );
    assert_eq!(
        table(&root, "current_ids").await,
        ["| id | is_deleted | seq |", "| 2  | false      | 1   |"]
    );
    let readings = table(&root, "readings").await;
    assert_eq!(readings.len(), 2, "{readings:?}");
    assert!(readings[1].contains("r1.json"), "{readings:?}");
}

/// SQL functions, as Unity Catalog defines them (the Kimball demo's `date_key` and
/// `net_sales`): `CREATE FUNCTION .. RETURNS type RETURN expr` in a pipeline file, called by
/// its datasets (by name, or qualified with a catalog and schema as Unity Catalog calls it)
/// with the declared parameter and result types.
#[tokio::test]
async fn sql_functions_defined_in_a_file_are_called_by_its_datasets() {
    let sql = r#"
CREATE OR REPLACE FUNCTION dbdemos.tpch_kimball.date_key(input_date DATE)
RETURNS BIGINT
COMMENT 'Converts a DATE into a Surrogate Key for the `date_dim` table'
RETURN CAST(DATE_FORMAT(input_date, 'yyyyMMdd') AS BIGINT);

CREATE OR REPLACE FUNCTION net_sales(
  price DECIMAL(18, 2),
  discount DECIMAL(18, 2),
  tax DECIMAL(18, 2),
  is_returned INT
)
RETURNS DECIMAL(18, 2)
RETURN price * (1 - discount) * (1 + tax) * (1 - is_returned);

CREATE MATERIALIZED VIEW sales AS
SELECT dbdemos.tpch_kimball.date_key(d) AS day_key, net_sales(p, 0.10, 0.05, r) AS net
FROM VALUES (DATE'2024-03-05', 10.00, 0), (DATE'2024-12-31', 20.00, 1) AS v(d, p, r);
"#;
    let (_tmp, root) = project(&[("lakeflow.yml", SPEC), ("sql/pipeline.sql", sql)]);
    let report = crate::sql_pipelines::run(&root).await;
    assert!(report.succeeded(), "{report}");
    assert_eq!(
        table(&root, "sales").await,
        [
            "| day_key  | net  |",
            "| 20240305 | 9.45 |",
            "| 20241231 | 0.00 |",
        ]
    );
    std::fs::write(
        root.join("sql/pipeline.sql"),
        "CREATE FUNCTION f(x INT) RETURNS TABLE (y INT) RETURN SELECT x;",
    )
    .unwrap();
    let e = match Project::find(&root) {
        Ok(_) => panic!("a table function loads"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("`f` is a table function"), "{e}");
}

/// An unknown table read by a SQL file gets advice a SQL user can follow: no Rust API.
#[tokio::test]
async fn an_unknown_table_in_a_sql_file_is_explained_in_sql_terms() {
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        (
            "sql/a.sql",
            "CREATE MATERIALIZED VIEW facts AS SELECT * FROM date_dimension_of_another_pipeline;",
        ),
    ]);
    let e = dry_run_error(&root).await;
    assert!(
        e.contains("reads `date_dimension_of_another_pipeline`")
            && e.contains("map the name to an existing table in the spec (`tables:`")
            && e.contains("or read it by its path")
            && !e.contains("Pipeline::"),
        "{e}"
    );
}
