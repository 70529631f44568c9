//! The admin listener (contract §6): `/healthz`, `/debug/config`,
//! `/debug/upstreams` and `/metrics`, served as a Pingora listening service
//! separate from the proxy. Router state is read through [`AdminView`],
//! which the snapshot store implements.

use std::sync::Arc;

use async_trait::async_trait;
use http::{header, Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use serde_json::{json, Value};

use crate::metrics::{self, UpstreamState};

/// What the admin listener shows; implemented by the snapshot store.
pub trait AdminView: Send + Sync + 'static {
    /// `{"version","source","applied_at","last_rejected","config"}`
    fn debug_config(&self) -> Value;
    /// `{"placements":{name:{"endpoint","health","circuit","inflight"}}}`
    fn debug_upstreams(&self) -> Value;
}

/// The admin HTTP app.
pub struct AdminApp {
    view: Arc<dyn AdminView>,
}

/// The admin listening service on `addr`. It also makes the view the source
/// of the live health and breaker gauges of `/metrics`.
pub fn service(addr: &str, view: Arc<dyn AdminView>) -> Service<AdminApp> {
    let reader = Arc::clone(&view);
    metrics::read_upstreams_from(move || upstream_states(&reader.debug_upstreams()));
    let mut service = Service::new("admin".to_owned(), AdminApp { view });
    service.add_tcp(addr);
    service
}

/// The gauges' view of `debug_upstreams`.
fn upstream_states(upstreams: &Value) -> Vec<UpstreamState> {
    let Some(placements) = upstreams["placements"].as_object() else {
        return Vec::new();
    };
    placements
        .iter()
        .map(|(name, p)| UpstreamState {
            placement: name.clone(),
            healthy: p["health"] != "unhealthy",
            circuit: p["circuit"].as_str().unwrap_or("closed").to_owned(),
        })
        .collect()
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let request = session.req_header();
        respond(self.view.as_ref(), &request.method, request.uri.path())
    }
}

/// The answer to one admin request (pure, for tests).
fn respond(view: &dyn AdminView, method: &Method, path: &str) -> Response<Vec<u8>> {
    let known = matches!(
        path,
        "/healthz" | "/debug/config" | "/debug/upstreams" | "/metrics"
    );
    if !known {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not_found", "message": format!("no admin endpoint {path}")}),
        );
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "method_not_allowed", "message": format!("{path} answers GET and HEAD")}),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/healthz" => json_response(StatusCode::OK, &json!({"status": "ok"})),
        "/debug/config" => json_response(StatusCode::OK, &view.debug_config()),
        "/debug/upstreams" => json_response(StatusCode::OK, &view.debug_upstreams()),
        _ => {
            let (body, content_type) = metrics::render();
            body_response(StatusCode::OK, &content_type, body)
        }
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<Vec<u8>> {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    body_response(status, "application/json", body)
}

fn body_response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
        .expect("static header names and values are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FixedView;

    impl AdminView for FixedView {
        fn debug_config(&self) -> Value {
            json!({"version": "v1", "source": "file", "applied_at": "t", "last_rejected": null, "config": {}})
        }
        fn debug_upstreams(&self) -> Value {
            json!({"placements": {
                "a": {"endpoint": "http://h:1", "health": "healthy", "circuit": "closed", "inflight": 0},
                "b": {"endpoint": "http://h:2", "health": "unhealthy", "circuit": "open", "inflight": 3}
            }})
        }
    }

    fn get(path: &str) -> (StatusCode, String, Value) {
        let response = respond(&FixedView, &Method::GET, path);
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let length: usize = response.headers()[header::CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, response.body().len());
        let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (response.status(), content_type, body)
    }

    #[test]
    fn endpoints_answer_with_the_contract_shapes() {
        assert_eq!(
            get("/healthz"),
            (
                StatusCode::OK,
                "application/json".into(),
                json!({"status": "ok"})
            )
        );
        let (status, _, config) = get("/debug/config");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(config["version"], "v1");
        assert!(config["last_rejected"].is_null());
        let (_, _, upstreams) = get("/debug/upstreams");
        assert_eq!(upstreams["placements"]["b"]["inflight"], 3);
        let (status, content_type, _) = get("/metrics");
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/plain"), "{content_type}");
    }

    #[test]
    fn unknown_paths_and_methods_are_refused() {
        let (status, _, body) = get("/nope");
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "not_found");
        let response = respond(&FixedView, &Method::POST, "/healthz");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET, HEAD");
    }

    #[test]
    fn gauges_read_health_and_circuit_from_the_view() {
        let states = upstream_states(&FixedView.debug_upstreams());
        assert_eq!(
            states,
            vec![
                UpstreamState {
                    placement: "a".into(),
                    healthy: true,
                    circuit: "closed".into()
                },
                UpstreamState {
                    placement: "b".into(),
                    healthy: false,
                    circuit: "open".into()
                },
            ]
        );
    }
}
