//! Who may read the admin listener: the health checks are always open; the status page and its
//! JSON (and `/metrics` unless opened) need the configured bearer token, and beyond loopback
//! they are refused outright while no token is configured.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

/// The challenge a 401 carries: `Bearer` for clients, `Basic` so a browser asks for the token
/// (any user name, the token as password).
const CHALLENGE_BEARER: &str = "Bearer realm=\"opsync admin\"";
const CHALLENGE_BASIC: &str = "Basic realm=\"opsync admin\", charset=\"UTF-8\"";

/// The access rule of one listener.
#[derive(Clone)]
pub struct Access {
    token: Option<Arc<[u8]>>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("addr", &self.addr)
            .finish()
    }
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Beyond loopback with no token configured: nobody may read.
    NoToken,
    /// No credentials, or credentials that do not match.
    Unauthorized,
}

impl Access {
    /// The rule for a listener bound to `addr` with `token` (if any).
    pub fn new(addr: SocketAddr, token: Option<&str>) -> Self {
        Self {
            token: token.map(|t| Arc::from(t.as_bytes())),
            addr,
        }
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(token) = &self.token else {
            return if self.addr.ip().is_loopback() {
                Ok(())
            } else {
                Err(Refusal::NoToken)
            };
        };
        let presented = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(credential);
        let mut ok = false;
        for p in presented {
            ok |= bool::from(p.as_slice().ct_eq(token));
        }
        if ok {
            Ok(())
        } else {
            Err(Refusal::Unauthorized)
        }
    }

    fn refuse(&self, refusal: Refusal) -> Response {
        match refusal {
            Refusal::NoToken => (
                StatusCode::FORBIDDEN,
                format!(
                    "the admin listener listens on {}, beyond loopback: set admin.token (or \
                     admin.token_file) to serve this page here\n",
                    self.addr
                ),
            )
                .into_response(),
            Refusal::Unauthorized => {
                let mut resp = (
                    StatusCode::UNAUTHORIZED,
                    "this page needs the admin token: send `Authorization: Bearer <admin.token>`\n",
                )
                    .into_response();
                let headers = resp.headers_mut();
                headers.append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE_BEARER),
                );
                headers.append(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE_BASIC),
                );
                resp
            }
        }
    }
}

/// The token in one `Authorization` value: `Bearer T`, or `Basic base64(user:T)`.
fn credential(value: &str) -> Option<Vec<u8>> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.as_bytes().to_vec())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let colon = decoded.iter().position(|b| *b == b':')?;
        Some(decoded[colon + 1..].to_vec())
    } else {
        None
    }
}

/// Middleware: passes the request on when `access` allows it, answers 401 or 403 otherwise.
pub(crate) async fn guard(State(access): State<Access>, req: Request, next: Next) -> Response {
    match access.check(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => access.refuse(refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const TOKEN: &str = "0123456789abcdef-token";

    #[test]
    fn loopback_without_a_token_is_open() {
        let a = Access::new("127.0.0.1:9464".parse().unwrap(), None);
        assert_eq!(a.check(&headers(&[])), Ok(()));
        let a = Access::new("[::1]:9464".parse().unwrap(), None);
        assert_eq!(a.check(&headers(&[])), Ok(()));
    }

    #[test]
    fn beyond_loopback_without_a_token_nobody_reads() {
        let a = Access::new("0.0.0.0:9464".parse().unwrap(), None);
        assert_eq!(a.check(&headers(&[])), Err(Refusal::NoToken));
        assert_eq!(
            a.check(&headers(&["Bearer anything"])),
            Err(Refusal::NoToken)
        );
    }

    #[test]
    fn a_configured_token_is_required_everywhere() {
        for addr in ["127.0.0.1:1", "0.0.0.0:1"] {
            let a = Access::new(addr.parse().unwrap(), Some(TOKEN));
            assert_eq!(a.check(&headers(&[])), Err(Refusal::Unauthorized));
            assert_eq!(
                a.check(&headers(&["Bearer wrong-token-of-some-length"])),
                Err(Refusal::Unauthorized)
            );
            assert_eq!(a.check(&headers(&[&format!("Bearer {TOKEN}")])), Ok(()));
            assert_eq!(a.check(&headers(&[&format!("bearer  {TOKEN} ")])), Ok(()));
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("me:{TOKEN}"));
            assert_eq!(a.check(&headers(&[&format!("Basic {basic}")])), Ok(()));
            let prefix = &TOKEN[..TOKEN.len() - 1];
            assert_eq!(
                a.check(&headers(&[&format!("Bearer {prefix}")])),
                Err(Refusal::Unauthorized)
            );
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let a = Access::new("0.0.0.0:1".parse().unwrap(), Some(TOKEN));
        assert!(!format!("{a:?}").contains(TOKEN));
    }
}
