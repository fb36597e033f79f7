//! `--create-tables`: the database and table, with the configured retention and
//! magnetic-store writes. Both calls treat "already exists" as success.

use aws_sdk_timestreamwrite::error::DisplayErrorContext;
use aws_sdk_timestreamwrite::types::{MagneticStoreWriteProperties, RetentionProperties};
use aws_sdk_timestreamwrite::Client;

use crate::config::TimestreamSinkConfig;

/// Creates the database and table of `config` unless they exist.
pub async fn create_tables(client: &Client, config: &TimestreamSinkConfig) -> Result<(), String> {
    match client
        .create_database()
        .database_name(&config.database)
        .send()
        .await
    {
        Ok(_) => tracing::info!(database = %config.database, "created Timestream database"),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conflict_exception()) => {}
        Err(err) => {
            return Err(format!(
                "creating database {}: {}",
                config.database,
                DisplayErrorContext(err)
            ))
        }
    }
    let retention = RetentionProperties::builder()
        .memory_store_retention_period_in_hours(config.memory_retention_hours)
        .magnetic_store_retention_period_in_days(config.magnetic_retention_days)
        .build()
        .map_err(|err| err.to_string())?;
    let magnetic = MagneticStoreWriteProperties::builder()
        .enable_magnetic_store_writes(config.magnetic_store_writes)
        .build()
        .map_err(|err| err.to_string())?;
    match client
        .create_table()
        .database_name(&config.database)
        .table_name(&config.table)
        .retention_properties(retention)
        .magnetic_store_write_properties(magnetic)
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!(database = %config.database, table = %config.table, "created Timestream table");
            Ok(())
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conflict_exception()) =>
        {
            Ok(())
        }
        Err(err) => Err(format!(
            "creating table {}.{}: {}",
            config.database,
            config.table,
            DisplayErrorContext(err)
        )),
    }
}
