//! `outpostctl identity [--json]` (`GET /v1/identity`) and `outpostctl enroll --token T`
//! (`POST /v1/enroll` on the unix socket).

use std::path::Path;

use bytes::Bytes;
use hyper::Method;

use super::cli::EnrollArgs;
use super::client;
use super::{get, refused, request_failed, text_line, Outcome};
use crate::identity::view::{EnrollCommand, EnrolledView, IdentityView};

pub async fn identity(socket: &Path, json: bool) -> Outcome {
    get(socket, "/v1/identity", json, |b| {
        serde_json::from_slice::<IdentityView>(b).map(|v| render(&v))
    })
    .await
}

pub async fn enroll(socket: &Path, args: &EnrollArgs) -> Outcome {
    let body = match serde_json::to_vec(&EnrollCommand {
        token: args.token.clone(),
    }) {
        Ok(b) => b,
        Err(e) => return Outcome::fail(super::EXIT_USAGE, e),
    };
    let resp =
        match client::request(socket, Method::POST, "/v1/enroll", &[], Bytes::from(body)).await {
            Ok(r) => r,
            Err(e) => return request_failed(e),
        };
    if resp.status != 200 {
        return refused(&resp);
    }
    if args.json {
        return Outcome::ok(text_line(&resp.body));
    }
    match serde_json::from_slice::<EnrolledView>(&resp.body) {
        Ok(v) => Outcome::ok(format!(
            "enrolled as {} ({} key); certificate {} valid until {}\n",
            v.device_id, v.key_protection, v.certificate, v.certificate_not_after
        )),
        Err(_) => Outcome::ok(text_line(&resp.body)),
    }
}

/// The readable form of `GET /v1/identity`.
pub fn render(v: &IdentityView) -> String {
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let mut out = String::new();
    out.push_str(&format!("device id:       {}\n", dash(&v.device_id)));
    let backend = match (&v.backend, &v.tcti) {
        (Some(b), Some(t)) => format!("{b} ({t})"),
        (b, _) => dash(b),
    };
    out.push_str(&format!("backend:         {backend}\n"));
    out.push_str(&format!("key protection:  {}\n", dash(&v.key_protection)));
    out.push_str(&format!("enrollment:      {}\n", v.enrollment));
    if let Some(c) = &v.certificate {
        out.push_str(&format!("certificate:     {}\n", c.path));
        out.push_str(&format!("  subject:       {}\n", c.subject));
        out.push_str(&format!("  issuer:        {}\n", c.issuer));
        out.push_str(&format!(
            "  valid:         {} to {}\n",
            c.not_before, c.not_after
        ));
    } else {
        out.push_str("certificate:     none\n");
    }
    out.push_str(&format!("hub:             {}\n", dash(&v.hub)));
    if let Some(e) = &v.last_error {
        out.push_str(&format!("last error:      {e}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::view::CertView;

    #[test]
    fn renders_every_field() {
        let v = IdentityView {
            configured: true,
            backend: Some("tpm".into()),
            tcti: Some("device:/dev/tpmrm0".into()),
            key_protection: Some("tpm".into()),
            public_key_sha256: Some("ab".into()),
            device_id: Some("ab".into()),
            enrollment: "enrolled".into(),
            last_error: None,
            token_configured: false,
            certificate: Some(CertView {
                path: "/s/identity/device.crt".into(),
                common_name: Some("ab".into()),
                subject: "CN=ab".into(),
                issuer: "CN=Outpost fleet CA".into(),
                not_before: "2026-01-01T00:00:00.000Z".into(),
                not_after: "2027-01-01T00:00:00.000Z".into(),
            }),
            hub: Some("https://hub:8443".into()),
        };
        let text = render(&v);
        for needle in [
            "device id:       ab",
            "backend:         tpm (device:/dev/tpmrm0)",
            "enrollment:      enrolled",
            "issuer:        CN=Outpost fleet CA",
            "to 2027-01-01T00:00:00.000Z",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        let bare = IdentityView {
            certificate: None,
            last_error: Some("boom".into()),
            ..v
        };
        assert!(render(&bare).contains("certificate:     none\n"));
        assert!(render(&bare).contains("last error:      boom"));
    }
}
