//! `resolver = "sql"`: the session lives in a PostgreSQL or MySQL/MariaDB table. The query
//! takes the session id as its one bound parameter; the first row, as a JSON object keyed by
//! column name, is the session document.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Column, Either, Executor, Row, SqlSafeStr, Statement, TypeInfo};
use tokio::sync::OnceCell;

use super::{
    Check, Diagnosis, Finding, IdentityError, Resolution, ResolveError, ResolveFuture, Session,
    SessionResolver,
};
use crate::config::{FieldMap, SqlResolverConfig};

/// Connections per pool: lookups are short and cached.
const POOL_SIZE: u32 = 8;
/// Session ids longer than this are not looked up.
const MAX_SID_LEN: usize = 512;

enum Options {
    Postgres(PgConnectOptions),
    MySql(MySqlConnectOptions),
}

enum Pool {
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// How an id is bound to a query's parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IdParam {
    /// As text.
    Text,
    /// As a 16-bit integer.
    Int2,
    /// As a 32-bit integer.
    Int4,
    /// As a 64-bit integer.
    Int8,
}

/// A database pool, created on first use (inside the runtime); connections open lazily, so
/// a database that is down at start does not stop the proxy.
pub(super) struct SqlStore {
    options: Options,
    pool: OnceCell<Pool>,
    timeout: Duration,
}

/// Resolves sessions stored in SQL.
pub struct SqlResolver {
    store: SqlStore,
    query: String,
    fields: FieldMap,
    diagnosis: Arc<Diagnosis>,
}

fn store_error(e: sqlx::Error) -> ResolveError {
    // sqlx errors name the failure, not the connection URL.
    ResolveError::Store(format!("sql: {e}"))
}

impl SqlStore {
    /// A store at `url` (`key` names the setting in errors); parsed now, nothing connects.
    pub(super) fn new(
        url: &str,
        timeout: Duration,
        key: &'static str,
    ) -> Result<Self, IdentityError> {
        let invalid = |e: sqlx::Error| IdentityError::Config {
            key,
            message: format!("unusable database URL: {e}"),
        };
        let scheme = url.split("://").next().unwrap_or_default();
        let options = match scheme {
            "postgres" | "postgresql" => {
                Options::Postgres(PgConnectOptions::from_str(url).map_err(invalid)?)
            }
            _ => {
                // sqlx names MariaDB URLs mysql://.
                let url = url.replacen("mariadb://", "mysql://", 1);
                Options::MySql(MySqlConnectOptions::from_str(&url).map_err(invalid)?)
            }
        };
        Ok(SqlStore {
            options,
            pool: OnceCell::new(),
            timeout,
        })
    }

    /// `$1` for PostgreSQL, `?` for MySQL/MariaDB.
    pub(super) fn placeholder(&self) -> &'static str {
        match self.options {
            Options::Postgres(_) => "$1",
            Options::MySql(_) => "?",
        }
    }

    /// The first row `query` returns for `sid` (bound, never interpolated), as a JSON object
    /// keyed by column name.
    pub(super) async fn row(&self, query: &str, sid: &str) -> Result<Option<Value>, ResolveError> {
        self.row_bound(query, sid).await
    }

    /// [`row`](Self::row) with any bound value both databases take (text, an integer).
    pub(super) async fn row_bound<T>(
        &self,
        query: &str,
        value: T,
    ) -> Result<Option<Value>, ResolveError>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>
            + for<'q> sqlx::Encode<'q, sqlx::MySql>
            + sqlx::Type<sqlx::MySql>
            + Send,
    {
        // sqlx prepares it once per connection.
        Ok(match self.pool().await {
            Pool::Postgres(pool) => sqlx::query(AssertSqlSafe(query.to_string()))
                .bind(value)
                .fetch_optional(pool)
                .await
                .map_err(store_error)?
                .map(|row| pg_document(&row)),
            Pool::MySql(pool) => sqlx::query(AssertSqlSafe(query.to_string()))
                .bind(value)
                .fetch_optional(pool)
                .await
                .map_err(store_error)?
                .map(|row| mysql_document(&row)),
        })
    }

    /// How the query's first parameter must be bound. PostgreSQL infers it (`WHERE id = $1`
    /// on an integer column is an integer): a text parameter there is an error ("integer =
    /// text"), and the statement each connection caches is typed, so ids are bound at the
    /// width it inferred. MySQL converts by itself: text.
    pub(super) async fn id_parameter(&self, query: &str) -> Result<IdParam, ResolveError> {
        match self.pool().await {
            Pool::Postgres(pool) => {
                let statement = pool
                    .prepare(AssertSqlSafe(query.to_string()).into_sql_str())
                    .await
                    .map_err(store_error)?;
                let inferred = match statement.parameters() {
                    Some(Either::Left(types)) => types.first().map(|t| t.name().to_string()),
                    _ => None,
                };
                Ok(match inferred.as_deref() {
                    Some("INT2") => IdParam::Int2,
                    Some("INT4") => IdParam::Int4,
                    Some("INT8") => IdParam::Int8,
                    _ => IdParam::Text,
                })
            }
            Pool::MySql(_) => Ok(IdParam::Text),
        }
    }

    pub(super) async fn probe(&self) -> Result<(), ResolveError> {
        match self.pool().await {
            Pool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Pool::MySql(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
        .map_err(store_error)
    }

    pub(super) fn describe(&self) -> String {
        match &self.options {
            Options::Postgres(o) => format!("postgres at {}:{}", o.get_host(), o.get_port()),
            Options::MySql(o) => format!("mysql at {}:{}", o.get_host(), o.get_port()),
        }
    }

    async fn pool(&self) -> &Pool {
        self.pool
            .get_or_init(|| async {
                match &self.options {
                    Options::Postgres(o) => Pool::Postgres(
                        PgPoolOptions::new()
                            .max_connections(POOL_SIZE)
                            .acquire_timeout(self.timeout)
                            .connect_lazy_with(o.clone()),
                    ),
                    Options::MySql(o) => Pool::MySql(
                        MySqlPoolOptions::new()
                            .max_connections(POOL_SIZE)
                            .acquire_timeout(self.timeout)
                            .connect_lazy_with(o.clone()),
                    ),
                }
            })
            .await
    }
}

impl SqlResolver {
    /// A resolver for `[session.sql]`; the URL is parsed now, nothing connects yet.
    pub fn new(
        config: &SqlResolverConfig,
        fields: FieldMap,
        timeout: Duration,
        diagnosis: Arc<Diagnosis>,
    ) -> Result<Self, IdentityError> {
        Ok(SqlResolver {
            store: SqlStore::new(&config.url, timeout, "session.sql.url")?,
            query: config.query.clone(),
            fields,
            diagnosis,
        })
    }

    async fn lookup(&self, sid: &str) -> Result<Resolution, ResolveError> {
        if sid.is_empty() || sid.len() > MAX_SID_LEN {
            return Ok(Resolution::Anonymous);
        }
        Ok(match self.store.row(&self.query, sid).await? {
            Some(document) => {
                self.diagnosis.passed(Check::Session);
                self.diagnosis.user_from(&self.fields, &document)
            }
            None => {
                self.diagnosis.failed(Check::Session, || Finding {
                    key: "session.sql.query".into(),
                    message: format!(
                        "session.sql.query returned no row for any session cookie seen on {}; \
                         check the table and id column it reads, and the database in \
                         session.sql.url",
                        self.describe()
                    ),
                });
                Resolution::Anonymous
            }
        })
    }
}

/// Column `i` decoded as `T` and turned into JSON (SQL NULL is JSON null); `None` when the
/// column is not of type `T`.
fn column_as<'r, R, T>(row: &'r R, i: usize, to_json: impl FnOnce(T) -> Value) -> Option<Value>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    row.try_get::<Option<T>, _>(i)
        .ok()
        .map(|v| v.map_or(Value::Null, to_json))
}

/// A row as a JSON object keyed by column name; each column is the first of `decoders`
/// that can read it, or null.
fn document<R: Row>(row: &R, decoders: &[fn(&R, usize) -> Option<Value>]) -> Value {
    let mut doc = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = decoders
            .iter()
            .find_map(|decode| decode(row, i))
            .unwrap_or(Value::Null);
        doc.insert(column.name().to_string(), value);
    }
    Value::Object(doc)
}

/// Column values as JSON: JSON columns nested, numbers, booleans and text as themselves;
/// types without a JSON form (timestamps, UUIDs: cast them to text in the query) are null.
fn pg_document(row: &PgRow) -> Value {
    document(
        row,
        &[
            |row, i| column_as::<_, Value>(row, i, |v| v),
            |row, i| column_as::<_, String>(row, i, Value::String),
            |row, i| column_as::<_, i64>(row, i, Value::from),
            |row, i| column_as::<_, i32>(row, i, Value::from),
            |row, i| column_as::<_, i16>(row, i, Value::from),
            |row, i| column_as::<_, f64>(row, i, Value::from),
            |row, i| column_as::<_, bool>(row, i, Value::from),
        ],
    )
}

/// As [`pg_document`], for MySQL/MariaDB. sqlx would decode any text column as JSON
/// (turning a `user_id` of "1e3" into 1000.0), so text stays text unless it holds a JSON
/// object or array (MariaDB's JSON columns are text).
fn mysql_document(row: &MySqlRow) -> Value {
    document(
        row,
        &[
            |row, i| column_as::<_, String>(row, i, text_or_json),
            |row, i| column_as::<_, i64>(row, i, Value::from),
            |row, i| column_as::<_, u64>(row, i, Value::from),
            |row, i| column_as::<_, f64>(row, i, Value::from),
            |row, i| column_as::<_, bool>(row, i, Value::from),
            |row, i| column_as::<_, Value>(row, i, |v| v),
            |row, i| {
                column_as::<_, Vec<u8>>(row, i, |b| {
                    Value::String(String::from_utf8_lossy(&b).into_owned())
                })
            },
        ],
    )
}

/// Text as a string, unless it is a JSON object or array.
fn text_or_json(text: String) -> Value {
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(value) = serde_json::from_str(&text)
    {
        return value;
    }
    Value::String(text)
}

impl SessionResolver for SqlResolver {
    fn resolve<'a>(&'a self, session: Session<'a>) -> ResolveFuture<'a> {
        Box::pin(self.lookup(session.cookie))
    }

    fn probe(&self) -> Pin<Box<dyn Future<Output = Result<(), ResolveError>> + Send + '_>> {
        Box::pin(self.store.probe())
    }

    fn describe(&self) -> String {
        self.store.describe()
    }
}
