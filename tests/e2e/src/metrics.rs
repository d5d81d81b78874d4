//! Reads the agent's Prometheus metrics (`GET /metrics`): the one status surface whose names
//! are part of the operator contract, so tests assert against it.

use anyhow::{bail, Result};

use crate::unix_http::UnixHttp;

pub struct Metrics(String);

impl Metrics {
    pub fn fetch(api: &mut UnixHttp) -> Result<Self> {
        let r = api.get("/metrics")?;
        if r.status != 200 {
            bail!("/metrics answered {}", r.status);
        }
        Ok(Self(String::from_utf8(r.body)?))
    }

    /// Sum of every sample of `name` whose labels contain all of `labels` (`key="value"` pairs).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (metric, label_text) = match series.split_once('{') {
                    Some((m, rest)) => (m, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                if metric != name {
                    return None;
                }
                let all = labels
                    .iter()
                    .all(|(k, v)| label_text.split(',').any(|p| p == format!("{k}=\"{v}\"")));
                all.then(|| value.parse::<f64>().ok()).flatten()
            })
            .sum()
    }

    pub fn pending(&self) -> u64 {
        self.sum("outpost_outbox_pending_records", &[]) as u64
    }

    pub fn text(&self) -> &str {
        &self.0
    }
}
