//! AWS Signature Version 4 for one request: canonical request, string to sign, signing key and
//! the `Authorization` header, composed from the `hmac` and `sha2` crates; and, on top of it, the
//! one request path of every AWS plugin: [`Client::post`] signs a call and sends it, and
//! [`settings`] reads the credential and region config the AWS plugins share.

pub mod client;
pub mod settings;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub use client::Client;

/// Credentials; no `Debug`, so they cannot reach a log line.
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// What a signature covers.
pub struct Signed<'a> {
    pub method: &'a str,
    /// The URI path, already percent-encoded (`/` for the JSON APIs).
    pub path: &'a str,
    /// The query, already in canonical form (sorted, encoded), or empty.
    pub query: &'a str,
    /// Every header to sign, `host` and `x-amz-date` included; names are lower-cased here.
    pub headers: &'a [(String, String)],
    pub payload: &'a [u8],
}

/// Where the signature is valid: `date` is `YYYYMMDD`, `timestamp` `YYYYMMDDTHHMMSSZ`.
pub struct Scope<'a> {
    pub date: &'a str,
    pub timestamp: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The canonical request and the `;`-joined signed header names.
fn canonical_request(req: &Signed<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(n, v)| {
            let value = v.split_whitespace().collect::<Vec<_>>().join(" ");
            (n.to_ascii_lowercase(), value)
        })
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{}",
        req.method,
        req.path,
        req.query,
        sha256_hex(req.payload)
    );
    (request, signed)
}

fn signing_key(secret: &str, scope: &Scope<'_>) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), scope.date.as_bytes());
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The `Authorization` header value for `req`.
pub fn authorization(creds: &Credentials, scope: &Scope<'_>, req: &Signed<'_>) -> String {
    let (canonical, signed_headers) = canonical_request(req);
    let credential_scope = format!(
        "{}/{}/{}/aws4_request",
        scope.date, scope.region, scope.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{credential_scope}\n{}",
        scope.timestamp,
        sha256_hex(canonical.as_bytes())
    );
    let signature = hex::encode(hmac(
        &signing_key(&creds.secret_access_key, scope),
        string_to_sign.as_bytes(),
    ));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    )
}

/// Signs a request to `authority`: adds `x-amz-date`, `x-amz-security-token` (with a session
/// token) and `authorization` to `headers`. `host` is signed but not returned: the host sets it
/// from the authority, and the guest may not.
pub fn sign(
    creds: &Credentials,
    scope: &Scope<'_>,
    authority: &str,
    method: &str,
    path: &str,
    mut headers: Vec<(String, String)>,
    payload: &[u8],
) -> Vec<(String, String)> {
    headers.push(("host".to_string(), authority.to_string()));
    headers.push(("x-amz-date".to_string(), scope.timestamp.to_string()));
    if let Some(token) = &creds.session_token {
        headers.push(("x-amz-security-token".to_string(), token.clone()));
    }
    let authorization = authorization(
        creds,
        scope,
        &Signed {
            method,
            path,
            query: "",
            headers: &headers,
            payload,
        },
    );
    headers.retain(|(n, _)| n != "host");
    headers.push(("authorization".to_string(), authorization));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of the AWS documentation (IAM `ListUsers`, 2015-08-30).
    #[test]
    fn matches_the_documented_example() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let scope = Scope {
            date: "20150830",
            timestamp: "20150830T123600Z",
            region: "us-east-1",
            service: "iam",
        };
        assert_eq!(
            hex::encode(signing_key(&creds.secret_access_key, &scope)),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        let headers = [
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
            ("Host".to_string(), "iam.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
        ];
        let req = Signed {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &headers,
            payload: b"",
        };
        assert_eq!(
            authorization(&creds, &scope, &req),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }
}
