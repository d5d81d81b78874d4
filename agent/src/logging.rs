//! tracing setup: text on stderr, JSON lines, or the systemd journal.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("log level {0:?}: {1}")]
    Filter(String, String),
    #[error("cannot connect to the systemd journal: {0}")]
    Journald(std::io::Error),
    #[error("a global logger is already installed: {0}")]
    AlreadySet(String),
}

/// A level (`info`) or a full filter directive (`info,outpost_agent=debug`).
pub fn parse_filter(level: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder().parse(level).map_err(|e| e.to_string())
}

/// Installs the global subscriber. Returns the format actually used (auto resolves here).
pub fn init(cfg: &LogConfig) -> Result<LogFormat, LoggingError> {
    let filter =
        parse_filter(&cfg.level).map_err(|e| LoggingError::Filter(cfg.level.clone(), e))?;
    let format = match cfg.format {
        // systemd sets JOURNAL_STREAM when stderr is connected to the journal.
        LogFormat::Auto if std::env::var_os("JOURNAL_STREAM").is_some() => LogFormat::Journald,
        LogFormat::Auto => LogFormat::Text,
        other => other,
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Journald => {
            let layer = tracing_journald::layer().map_err(LoggingError::Journald)?;
            registry.with(layer).try_init()
        }
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text | LogFormat::Auto => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    result.map_err(|e| LoggingError::AlreadySet(e.to_string()))?;
    Ok(format)
}
