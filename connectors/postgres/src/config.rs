//! The JDBC sink's keys (Confluent `JdbcSinkConfig`) as far as PostgreSQL needs them, plus our own
//! `exactly.once.*`, and the parsing of `connection.url` in both its JDBC and its libpq form.

use connect_core::{Config, ConfigDef, ConfigKey, ConfigType, ConnectError, Importance, Result, Validator};
use std::time::Duration;

pub const CONNECTION_URL: &str = "connection.url";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    Insert,
    Upsert,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkMode {
    None,
    Kafka,
    RecordKey,
    RecordValue,
}

/// TLS to the database, from `sslmode` (libpq and pgjdbc) or `ssl=true` (pgjdbc) in `connection.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// `disable`, `allow`, `prefer` or nothing: a plain connection.
    Off,
    /// `require`: encrypted, the server's certificate not checked (as libpq does without a root certificate).
    Require,
    /// `verify-ca` / `verify-full` (or `ssl=true`): the certificate must chain to `sslrootcert` and name the host.
    Verify { root_cert: Option<std::path::PathBuf> },
}

/// A parsed sink config.
#[derive(Debug, Clone)]
pub struct PostgresSinkConfig {
    pub connection: tokio_postgres::Config,
    pub tls: Tls,
    pub connection_attempts: u32,
    pub connection_backoff: Duration,
    pub insert_mode: InsertMode,
    pub pk_mode: PkMode,
    pub pk_fields: Vec<String>,
    pub fields_whitelist: Vec<String>,
    pub table_name_format: String,
    pub batch_size: usize,
    /// Insert mode: how long one COPY may stay open across puts (zero: each put's rows in COPYs of their own).
    pub copy_linger: Duration,
    pub delete_enabled: bool,
    pub auto_create: bool,
    pub auto_evolve: bool,
    pub max_retries: u32,
    pub retry_backoff: Duration,
    pub quote_identifiers: bool,
    /// Our own: write each batch's Kafka offsets in the batch's transaction and rewind to them on `open`.
    pub exactly_once: bool,
    pub offsets_table: String,
}

pub fn def() -> ConfigDef {
    let key = |name: &str, kind, default: Option<&str>, doc: &str| ConfigKey::new(name, kind, default, Importance::Medium, doc);
    ConfigDef::new()
        .define(
            ConfigKey::required(
                CONNECTION_URL,
                ConfigType::String,
                Importance::High,
                "jdbc:postgresql://host:port/db?user=..&password=.. or postgres://user:password@host:port/db; an empty database is the user's default.",
            )
            .validator(Validator::custom(|v| match v {
                connect_core::config::ConfigValue::String(s) => parse_url(s).map(|_| ()),
                _ => Ok(()),
            })
            .described("jdbc:postgresql:// or postgres:// URL")),
        )
        .define(key("connection.user", ConfigType::String, None, "Database user (overrides the URL's)."))
        .define(key("connection.password", ConfigType::Password, None, "Database password (overrides the URL's)."))
        .define(key("connection.attempts", ConfigType::Int, Some("3"), "Connection attempts before a put fails retriably; each failed one also spends one of max.retries.").validator(Validator::at_least(1.0)))
        .define(key("connection.backoff.ms", ConfigType::Long, Some("10000"), "Wait between connection attempts.").validator(Validator::at_least(0.0)))
        .define(key("dialect.name", ConfigType::String, Some(""), "Accepted for compatibility; only PostgreSqlDatabaseDialect exists."))
        .define(
            key("insert.mode", ConfigType::String, Some("insert"), "insert, upsert (INSERT .. ON CONFLICT) or update.")
                .validator(Validator::OneOf(vec!["insert", "upsert", "update"])),
        )
        .define(
            key("pk.mode", ConfigType::String, Some("none"), "Where the primary key comes from: none, kafka, record_key, record_value.")
                .validator(Validator::OneOf(vec!["none", "kafka", "record_key", "record_value"])),
        )
        .define(key("pk.fields", ConfigType::List, Some(""), "Primary key field names; their meaning depends on pk.mode."))
        .define(key("fields.whitelist", ConfigType::List, Some(""), "Value fields to write; empty: all."))
        .define(key("table.name.format", ConfigType::String, Some("${topic}"), "Destination table name; ${topic} is the record's topic."))
        .define(key("table.types", ConfigType::List, Some("TABLE"), "Accepted for compatibility."))
        .define(key("batch.size", ConfigType::Int, Some("3000"), "Records per transaction.").validator(Validator::at_least(1.0)))
        .define(
            key(
                "copy.linger.ms",
                ConfigType::Long,
                Some("200"),
                "connect-rs: how long one COPY (insert) or one staged transaction (upsert, update) may stay open across batches, so PostgreSQL sets a COPY up once per many batches and parses one while the next is encoded; rows are visible and offsets committed when it ends. 0: each batch is written when it is put, as the JDBC sink does.",
            )
            .validator(Validator::between(0.0, 3_600_000.0)),
        )
        .define(key("delete.enabled", ConfigType::Boolean, Some("false"), "Tombstones delete the row with the record key (needs pk.mode=record_key)."))
        .define(key("auto.create", ConfigType::Boolean, Some("false"), "CREATE TABLE from the records' fields when the table is missing."))
        .define(key("auto.evolve", ConfigType::Boolean, Some("false"), "ALTER TABLE ADD COLUMN for fields the table lacks."))
        .define(key("max.retries", ConfigType::Int, Some("10"), "The retry budget: failures in a row for a reason other than the rows (a failed batch or connection attempt) before the task fails.").validator(Validator::at_least(0.0)))
        .define(key("retry.backoff.ms", ConfigType::Int, Some("3000"), "Wait before a failed batch is written again.").validator(Validator::at_least(0.0)))
        .define(
            key("quote.sql.identifiers", ConfigType::String, Some("always"), "always: table and column names keep their case; never: Postgres folds them.")
                .validator(Validator::OneOf(vec!["always", "never"])),
        )
        .define(key("db.timezone", ConfigType::String, Some("UTC"), "Time zone of TIMESTAMP columns (only UTC is supported)."))
        .define(key(
            "exactly.once.enabled",
            ConfigType::Boolean,
            Some("false"),
            "connect-rs: store each batch's Kafka offsets in the same transaction and resume from them, so no row is written twice even in insert mode.",
        ))
        .define(key("exactly.once.offsets.table", ConfigType::String, Some("connect_rs_sink_offsets"), "connect-rs: the table those offsets live in."))
}

impl PostgresSinkConfig {
    pub fn parse(config: &Config) -> Result<Self> {
        let p = def().parse(config)?;
        let url = p.string(CONNECTION_URL);
        let mut connection = parse_url(&url).map_err(ConnectError::fatal)?;
        let tls = parse_tls(&url).map_err(ConnectError::fatal)?;
        if let Some(user) = p.optional_string("connection.user").filter(|u| !u.is_empty()) {
            connection.user(&user);
        }
        if let Some(password) = p.password("connection.password") {
            connection.password(password.expose());
        }
        if connection.get_user().is_none() {
            return Err(ConnectError::fatal("Missing database user: set connection.user or put user= in connection.url"));
        }
        if !p.string("db.timezone").eq_ignore_ascii_case("UTC") {
            return Err(ConnectError::fatal(format!(
                "Invalid value {} for configuration db.timezone: only UTC is supported",
                p.string("db.timezone")
            )));
        }
        let insert_mode = match p.string("insert.mode").to_ascii_lowercase().as_str() {
            "upsert" => InsertMode::Upsert,
            "update" => InsertMode::Update,
            _ => InsertMode::Insert,
        };
        let pk_mode = match p.string("pk.mode").to_ascii_lowercase().as_str() {
            "kafka" => PkMode::Kafka,
            "record_key" => PkMode::RecordKey,
            "record_value" => PkMode::RecordValue,
            _ => PkMode::None,
        };
        let mut pk_fields = p.list("pk.fields");
        if pk_mode == PkMode::Kafka && pk_fields.is_empty() {
            pk_fields = vec!["__connect_topic".into(), "__connect_partition".into(), "__connect_offset".into()];
        }
        if pk_mode == PkMode::Kafka && pk_fields.len() != 3 {
            return Err(ConnectError::fatal(
                "Invalid value for configuration pk.fields: pk.mode=kafka needs exactly 3 names (topic, partition, offset)",
            ));
        }
        if insert_mode != InsertMode::Insert && pk_mode == PkMode::None {
            return Err(ConnectError::fatal(format!(
                "Invalid value none for configuration pk.mode: insert.mode={insert_mode:?} needs a primary key"
            )));
        }
        let delete_enabled = p.boolean("delete.enabled");
        if delete_enabled && pk_mode != PkMode::RecordKey {
            return Err(ConnectError::fatal("Invalid value true for configuration delete.enabled: deletes need pk.mode=record_key"));
        }
        Ok(PostgresSinkConfig {
            connection,
            tls,
            connection_attempts: p.int("connection.attempts") as u32,
            connection_backoff: Duration::from_millis(p.int("connection.backoff.ms") as u64),
            insert_mode,
            pk_mode,
            pk_fields,
            fields_whitelist: p.list("fields.whitelist"),
            table_name_format: p.string("table.name.format"),
            batch_size: p.int("batch.size") as usize,
            copy_linger: Duration::from_millis(p.int("copy.linger.ms") as u64),
            delete_enabled,
            auto_create: p.boolean("auto.create"),
            auto_evolve: p.boolean("auto.evolve"),
            max_retries: p.int("max.retries") as u32,
            retry_backoff: Duration::from_millis(p.int("retry.backoff.ms") as u64),
            quote_identifiers: p.string("quote.sql.identifiers").eq_ignore_ascii_case("always"),
            exactly_once: p.boolean("exactly.once.enabled"),
            offsets_table: p.string("exactly.once.offsets.table"),
        })
    }

    pub fn table_name(&self, topic: &str) -> String {
        self.table_name_format.replace("${topic}", topic)
    }
}

/// Parse `jdbc:postgresql://host[:port]/[db][?user=..&password=..]` or a libpq URL (`postgres://`,
/// `postgresql://`). An empty database means the user's default, as JDBC does.
pub fn parse_url(url: &str) -> std::result::Result<tokio_postgres::Config, String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("jdbc:postgresql://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or_else(|| {
            format!("Invalid value {url} for configuration connection.url: expected jdbc:postgresql://host:port/db or postgres://...")
        })?;
    let (authority_path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, db) = authority_path.split_once('/').unwrap_or((authority_path, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut config = tokio_postgres::Config::new();
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| format!("Invalid value {url} for configuration connection.url: bad port '{p}'"))?)
        }
        _ => (hostport, 5432),
    };
    config.host(if host.is_empty() { "localhost" } else { host.trim_matches(['[', ']']) }).port(port);
    if !db.is_empty() {
        config.dbname(decode(db));
    }
    if let Some(u) = userinfo {
        let (user, password) = u.split_once(':').unwrap_or((u, ""));
        config.user(decode(user));
        if !password.is_empty() {
            config.password(decode(password));
        }
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "user" => {
                config.user(decode(v));
            }
            "password" => {
                config.password(decode(v));
            }
            "connectTimeout" | "connect_timeout" => {
                if let Ok(s) = v.parse::<u64>() {
                    config.connect_timeout(Duration::from_secs(s));
                }
            }
            "ApplicationName" | "application_name" => {
                config.application_name(decode(v));
            }
            _ => {} // JDBC driver settings without a libpq meaning (ssl*, loggerLevel, ...) are ignored.
        }
    }
    Ok(config)
}

/// The TLS settings of a `connection.url`'s query.
pub fn parse_tls(url: &str) -> std::result::Result<Tls, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let param = |name: &str| query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| decode(v));
    let root_cert = param("sslrootcert").filter(|p| !p.is_empty()).map(std::path::PathBuf::from);
    let mode = param("sslmode").or_else(|| param("ssl").filter(|v| v == "true").map(|_| "verify-full".to_string()));
    match mode.as_deref() {
        None | Some("disable" | "allow" | "prefer") => Ok(Tls::Off),
        Some("require") => Ok(Tls::Require),
        Some("verify-ca" | "verify-full") => Ok(Tls::Verify { root_cert }),
        Some(other) => Err(format!(
            "Invalid value {url} for configuration connection.url: sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
        )),
    }
}

/// Percent-decoding of URL parts (a password may hold `@` or `:` written as %40, %3A).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn jdbc_and_libpq_urls() {
        let c = parse_url("jdbc:postgresql://127.0.0.1:5432/").unwrap();
        assert_eq!(c.get_ports(), &[5432]);
        assert_eq!(c.get_dbname(), None, "an empty database is the user's default");
        let c = parse_url("jdbc:postgresql://db.example:6543/rail?user=connect&password=p%40ss&ssl=false").unwrap();
        assert_eq!((c.get_dbname(), c.get_user(), c.get_password()), (Some("rail"), Some("connect"), Some(&b"p@ss"[..])));
        let c = parse_url("postgres://u:secret@localhost/test").unwrap();
        assert_eq!((c.get_dbname(), c.get_user(), c.get_ports()), (Some("test"), Some("u"), &[5432][..]));
        assert!(parse_url("jdbc:mysql://x/y").unwrap_err().contains("connection.url"));
        assert!(parse_url("jdbc:postgresql://h:port/db").is_err());
        assert_eq!(parse_tls("jdbc:postgresql://h/db").unwrap(), Tls::Off);
        assert_eq!(parse_tls("postgres://u@h/db?sslmode=require").unwrap(), Tls::Require);
        assert_eq!(
            parse_tls("jdbc:postgresql://h/db?ssl=true&sslrootcert=/etc/ca.pem").unwrap(),
            Tls::Verify { root_cert: Some("/etc/ca.pem".into()) }
        );
        assert!(parse_tls("postgres://h/db?sslmode=sometimes").is_err());
    }

    #[test]
    fn rail_config_parses_and_bad_combinations_are_refused() {
        let base = [
            ("connection.url", "jdbc:postgresql://127.0.0.1:5432/"),
            ("connection.user", "postgres"),
            ("auto.create", "true"),
            ("auto.evolve", "true"),
            ("insert.mode", "upsert"),
            ("pk.mode", "record_key"),
            ("pk.fields", "MESSAGE_KEY"),
        ];
        let c = PostgresSinkConfig::parse(&cfg(&base)).unwrap();
        assert_eq!(
            (c.insert_mode, c.pk_mode, c.pk_fields.clone()),
            (InsertMode::Upsert, PkMode::RecordKey, vec!["MESSAGE_KEY".to_string()])
        );
        assert_eq!(c.table_name("TRAIN_MOVEMENTS"), "TRAIN_MOVEMENTS");
        let upsert_without_pk = cfg(&[("connection.url", "postgres://u@h/d"), ("insert.mode", "upsert")]);
        assert!(PostgresSinkConfig::parse(&upsert_without_pk).unwrap_err().to_string().contains("needs a primary key"));
        let delete_without_key = cfg(&[("connection.url", "postgres://u@h/d"), ("delete.enabled", "true"), ("pk.mode", "kafka")]);
        assert!(PostgresSinkConfig::parse(&delete_without_key).is_err());
        let no_user = cfg(&[("connection.url", "jdbc:postgresql://h/d")]);
        assert!(PostgresSinkConfig::parse(&no_user).unwrap_err().to_string().contains("Missing database user"));
    }
}
