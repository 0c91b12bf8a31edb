//! A driver that executes capabilities against HTTP APIs (reqwest, rustls).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method};
use serde_json::{Map, Value};

use super::{Driver, DriverError, ExecutionContext};
use crate::error::{KernelError, Result};
use crate::types::RawResult;

/// Default per-request timeout when an endpoint sets none.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many characters of a response body go into an error.
pub const BODY_EXCERPT_CHARS: usize = 200;

/// One HTTP endpoint serving an operation.
#[derive(Debug, Clone)]
pub struct HttpEndpoint {
    url: reqwest::Url,
    method: Method,
    headers: HeaderMap,
    timeout: Option<Duration>,
}

impl HttpEndpoint {
    /// An endpoint at `url` with `method` (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`, …).
    /// An unparsable URL or method is [`KernelError::InvalidConfig`].
    pub fn new(method: &str, url: &str) -> Result<Self> {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| KernelError::invalid_config(format!("invalid HTTP method '{method}'")))?;
        let url = reqwest::Url::parse(url).map_err(|e| {
            KernelError::invalid_config(format!("invalid endpoint URL '{url}': {e}"))
        })?;
        Ok(Self {
            url,
            method,
            headers: HeaderMap::new(),
            timeout: None,
        })
    }

    /// Adds a header sent with every request to this endpoint.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self> {
        let (n, v) = parse_header(name, value)?;
        self.headers.insert(n, v);
        Ok(self)
    }

    /// Sets this endpoint's timeout (default: the driver's).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.method
    }
}

fn parse_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue)> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| KernelError::invalid_config(format!("invalid header name '{name}'")))?;
    let v = HeaderValue::from_str(value)
        .map_err(|_| KernelError::invalid_config(format!("invalid value for header '{name}'")))?;
    Ok((n, v))
}

/// Executes operations by calling HTTP endpoints.
///
/// GET and DELETE send the arguments (less `operation`) as query parameters;
/// other methods send them as a JSON body. Non-2xx responses and transport
/// failures are [`DriverError`]s carrying the status and at most 200 characters
/// of the body. A 2xx body must be JSON (an empty body is `null`).
///
/// ```
/// use std::time::Duration;
/// use agent_kernel::{HttpDriver, HttpEndpoint};
/// let mut d = HttpDriver::new("crm")?;
/// d.register_endpoint(
///     "get_customer",
///     HttpEndpoint::new("GET", "https://crm.example/api/customers")?
///         .with_header("x-api-version", "2")?
///         .with_timeout(Duration::from_secs(5)),
/// );
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HttpDriver {
    driver_id: String,
    client: Client,
    endpoints: HashMap<String, HttpEndpoint>,
    base_headers: HeaderMap,
    default_timeout: Duration,
}

impl HttpDriver {
    /// A driver with no endpoints and a 30 s default timeout.
    pub fn new(driver_id: impl Into<String>) -> Result<Self> {
        let client = Client::builder()
            .build()
            .map_err(|e| KernelError::invalid_config(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            driver_id: driver_id.into(),
            client,
            endpoints: HashMap::new(),
            base_headers: HeaderMap::new(),
            default_timeout: DEFAULT_HTTP_TIMEOUT,
        })
    }

    /// Sets the timeout used by endpoints without their own.
    #[must_use]
    pub fn with_default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Adds a header sent on every request (an endpoint's own header of the same name wins).
    pub fn with_base_header(mut self, name: &str, value: &str) -> Result<Self> {
        let (n, v) = parse_header(name, value)?;
        self.base_headers.insert(n, v);
        Ok(self)
    }

    /// Registers (or replaces) the endpoint serving `operation`.
    pub fn register_endpoint(&mut self, operation: impl Into<String>, endpoint: HttpEndpoint) {
        self.endpoints.insert(operation.into(), endpoint);
    }

    /// Builder form of [`register_endpoint`](Self::register_endpoint).
    #[must_use]
    pub fn with_endpoint(mut self, operation: impl Into<String>, endpoint: HttpEndpoint) -> Self {
        self.register_endpoint(operation, endpoint);
        self
    }

    fn fail(&self, message: String) -> DriverError {
        DriverError::new(&self.driver_id, message)
    }
}

/// Query-parameter text of one argument value.
fn query_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn query_pairs(args: &Map<String, Value>) -> Vec<(&str, String)> {
    let mut pairs = Vec::with_capacity(args.len());
    for (k, v) in args {
        if k == "operation" {
            continue;
        }
        match v {
            // Arrays repeat the key, one pair per element.
            Value::Array(items) => pairs.extend(items.iter().map(|i| (k.as_str(), query_text(i)))),
            other => pairs.push((k.as_str(), query_text(other))),
        }
    }
    pairs
}

fn excerpt(body: &str) -> String {
    body.chars().take(BODY_EXCERPT_CHARS).collect()
}

#[async_trait]
impl Driver for HttpDriver {
    fn driver_id(&self) -> &str {
        &self.driver_id
    }

    fn is_remote(&self) -> bool {
        true
    }

    async fn execute(
        &self,
        ctx: &ExecutionContext<'_>,
    ) -> std::result::Result<RawResult, DriverError> {
        let operation = ctx.operation();
        let endpoint = self
            .endpoints
            .get(operation)
            .ok_or_else(|| self.fail(format!("no endpoint for operation '{operation}'")))?;
        let mut headers = self.base_headers.clone();
        for (k, v) in &endpoint.headers {
            headers.insert(k.clone(), v.clone());
        }
        // W3C trace context of the current (CLIENT) span, so the tool server
        // joins the caller's trace; a no-op while telemetry is off.
        agent_kernel_otel::inject_context(|name, value| {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(n, v);
            }
        });
        let timeout = endpoint.timeout.unwrap_or(self.default_timeout);
        let mut request = self
            .client
            .request(endpoint.method.clone(), endpoint.url.clone())
            .headers(headers)
            .timeout(timeout);
        if endpoint.method == Method::GET || endpoint.method == Method::DELETE {
            request = request.query(&query_pairs(ctx.args));
        } else {
            let body: Map<String, Value> = ctx
                .args
                .iter()
                .filter(|(k, _)| k.as_str() != "operation")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let bytes = serde_json::to_vec(&body)
                .map_err(|e| self.fail(format!("cannot encode request body: {e}")))?;
            request = request.header(CONTENT_TYPE, "application/json").body(bytes);
        }
        let url = endpoint.url.as_str();
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                self.fail(format!("request to {url} timed out after {timeout:?}"))
            } else {
                self.fail(format!("request to {url} failed: {}", e.without_url()))
            }
        })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out reading the body"
            } else {
                "failed reading the body"
            };
            self.fail(format!("request to {url} {what}: {}", e.without_url()))
                .with_status(status.as_u16())
        })?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(self
                .fail(format!(
                    "HTTP {} from {url}: {}",
                    status.as_u16(),
                    excerpt(&text)
                ))
                .with_status(status.as_u16()));
        }
        let data: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|e| {
                let text = String::from_utf8_lossy(&body);
                self.fail(format!(
                    "response from {url} is not JSON ({e}): {}",
                    excerpt(&text)
                ))
                .with_status(status.as_u16())
            })?
        };
        let mut metadata = Map::new();
        metadata.insert("status_code".to_owned(), Value::from(status.as_u16()));
        metadata.insert("url".to_owned(), Value::from(url));
        Ok(RawResult {
            capability_id: ctx.capability_id.to_owned(),
            data: data.into(),
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_pairs_skip_operation_and_flatten() {
        let args = json!({"operation": "x", "q": "a b", "n": 3, "flag": true, "none": null, "ids": [1, "two"], "obj": {"k": 1}});
        let pairs = query_pairs(args.as_object().unwrap());
        let mut got: Vec<(String, String)> =
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("flag".into(), "true".into()),
                ("ids".into(), "1".into()),
                ("ids".into(), "two".into()),
                ("n".into(), "3".into()),
                ("none".into(), String::new()),
                ("obj".into(), "{\"k\":1}".into()),
                ("q".into(), "a b".into()),
            ]
        );
    }

    #[test]
    fn excerpt_counts_characters_not_bytes() {
        let body = "é".repeat(300);
        assert_eq!(excerpt(&body).chars().count(), 200);
        assert_eq!(excerpt("short"), "short");
    }

    #[test]
    fn invalid_config_is_refused() {
        assert_eq!(
            HttpEndpoint::new("GET", "not a url").unwrap_err().kind(),
            "invalid_config"
        );
        assert!(HttpEndpoint::new("BAD METHOD", "http://x").is_err());
        assert!(
            HttpEndpoint::new("get", "http://x")
                .unwrap()
                .with_header("bad header", "v")
                .is_err()
        );
        assert!(
            HttpEndpoint::new("post", "http://x")
                .unwrap()
                .with_header("x-ok", "line\nbreak")
                .is_err()
        );
        assert_eq!(
            HttpEndpoint::new("patch", "http://x/").unwrap().method(),
            Method::PATCH
        );
    }
}
