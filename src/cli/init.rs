//! `lakeflow init --name NAME`: a new project directory that runs as generated — a spec
//! file, SQL transformations (Spark's `spark-pipelines init` example in SQL, and a small
//! bronze/silver/gold pipeline over a landing directory), one landed file and a README.

use std::path::{Path, PathBuf};

const SPEC: &str =
    "# The pipeline: its name, where its tables are stored, where its definitions are,
# and values that SQL files read as ${key}.
name: {{name}}
storage: lakeflow-data
libraries:
  - glob:
      include: transformations/**
configuration:
  landing: data/landing
";

const EXAMPLE_SQL: &str = "-- The example of Spark's `spark-pipelines init`, in SQL only.
CREATE MATERIALIZED VIEW example_numbers AS
SELECT id FROM range(10);

CREATE MATERIALIZED VIEW example_even_numbers AS
SELECT id FROM example_numbers
WHERE id % 2 = 0;
";

const ORDERS_SQL: &str =
    "-- Bronze: the CSV files landed in the `landing` directory of lakeflow.yml, each read once.
CREATE STREAMING TABLE orders_bronze
COMMENT 'Orders as landed'
AS SELECT * FROM STREAM read_files('${landing}', format => 'csv');

-- Silver: the valid orders; the others are dropped and counted in the event log.
CREATE STREAMING TABLE orders_silver (
  CONSTRAINT valid_amount EXPECT (amount > 0) ON VIOLATION DROP ROW
)
COMMENT 'Orders with a positive amount'
AS SELECT order_id, customer, amount FROM STREAM(orders_bronze);

-- Gold: revenue per customer, recomputed when the orders change.
CREATE MATERIALIZED VIEW revenue_by_customer
COMMENT 'Orders and revenue per customer'
AS SELECT customer, count(*) AS orders, sum(amount) AS revenue
FROM orders_silver
GROUP BY customer;
";

const FIRST_ORDERS: &str = "order_id,customer,amount
1,alice,20.5
2,bob,13.0
3,alice,-1.0
";

const README: &str = "# {{name}}

A [lakeflow](https://crates.io/crates/lakeflow) pipeline project.

- `lakeflow.yml` names the pipeline, its storage (`lakeflow-data/`) and its definition files.
- `transformations/*.sql` define the datasets, in Spark Declarative Pipelines SQL.
- `data/landing/` is where order files arrive; `orders_bronze` reads each file once.

```sh
lakeflow run                      # run the pipeline: only new input is processed
lakeflow dry-run                  # check every definition without touching data
lakeflow graph --format mermaid   # the dependency graph (also dot, json)
lakeflow events                   # what the last run did
```

Land another file and run again — only that file is read:

```sh
printf 'order_id,customer,amount\\n4,carol,7.25\\n' > data/landing/orders-0002.csv
lakeflow run
```

`lakeflow run --full-refresh orders_bronze,orders_silver` recomputes those tables from all
files; `lakeflow run --refresh revenue_by_customer` runs only that dataset.
";

/// Creates the project `name` under `parent`; returns its directory.
pub fn create(parent: &Path, name: &str) -> Result<PathBuf, String> {
    let valid = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(format!(
            "`{name}` is not a project name; use letters, digits, `_`, `-` and `.`"
        ));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(format!(
            "`{}` already exists; choose another name or remove it",
            dir.display()
        ));
    }
    let files: [(&str, String); 5] = [
        ("lakeflow.yml", SPEC.replace("{{name}}", name)),
        ("README.md", README.replace("{{name}}", name)),
        ("transformations/example.sql", EXAMPLE_SQL.to_string()),
        ("transformations/orders.sql", ORDERS_SQL.to_string()),
        ("data/landing/orders-0001.csv", FIRST_ORDERS.to_string()),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, text)
        };
        write().map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    }
    Ok(dir)
}
