//! The integration tests of `lakeflow-sql`, in one binary: Spark SQL conformance against
//! results Spark itself gave (see `tests/spark/oracle.py`).

mod conformance;
