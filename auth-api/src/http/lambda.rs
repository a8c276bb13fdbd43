//! Between the Lambda event and the handler: lambda_http panics while converting some events
//! a client can provoke (a body marked base64 that is not base64, a `Host` header or path
//! that is not a valid URL). Such an event is replaced by one for [`MALFORMED_EVENT_PATH`],
//! which the handler answers with a 400 problem, never a 502.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::{Context, Poll};

use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use lambda_http::request::LambdaRequest;
use lambda_http::{LambdaEvent, Request, Service};

/// The path a malformed event is answered on. A client requesting it gets the same 400.
pub const MALFORMED_EVENT_PATH: &str = "/.malformed-event";

/// Whether lambda_http converts `payload` to a request without panicking. (A panic prints
/// lambda_http's message, which names no secret, to stderr.)
fn converts(payload: LambdaRequest) -> bool {
    catch_unwind(AssertUnwindSafe(|| Request::from(payload))).is_ok()
}

/// `payload` if lambda_http can convert it; otherwise the same event kind, with its request
/// context, for [`MALFORMED_EVENT_PATH`] with no headers, query or body.
pub fn sanitize(payload: LambdaRequest) -> LambdaRequest {
    match payload {
        LambdaRequest::ApiGatewayV1(event) => {
            if converts(LambdaRequest::ApiGatewayV1(event.clone())) {
                return LambdaRequest::ApiGatewayV1(event);
            }
            let mut safe = event;
            safe.request_context.domain_name = None;
            safe.path = Some(MALFORMED_EVENT_PATH.to_owned());
            safe.resource = Some(MALFORMED_EVENT_PATH.to_owned());
            safe.request_context.path = Some(MALFORMED_EVENT_PATH.to_owned());
            safe.headers.clear();
            safe.multi_value_headers.clear();
            safe.query_string_parameters = Default::default();
            safe.multi_value_query_string_parameters = Default::default();
            safe.path_parameters.clear();
            safe.body = None;
            safe.is_base64_encoded = false;
            if converts(LambdaRequest::ApiGatewayV1(safe.clone())) {
                return LambdaRequest::ApiGatewayV1(safe);
            }
            // Something in the request context itself: keep nothing but the path.
            let mut bare = ApiGatewayProxyRequest::default();
            bare.path = Some(MALFORMED_EVENT_PATH.to_owned());
            LambdaRequest::ApiGatewayV1(bare)
        }
        LambdaRequest::ApiGatewayV2(event) => {
            if converts(LambdaRequest::ApiGatewayV2(event.clone())) {
                return LambdaRequest::ApiGatewayV2(event);
            }
            let mut safe = event;
            safe.raw_path = Some(MALFORMED_EVENT_PATH.to_owned());
            safe.request_context.http.path = Some(MALFORMED_EVENT_PATH.to_owned());
            safe.request_context.stage = None;
            safe.request_context.domain_name = None;
            safe.headers.clear();
            safe.cookies = None;
            safe.raw_query_string = None;
            safe.query_string_parameters = Default::default();
            safe.path_parameters.clear();
            safe.body = None;
            safe.is_base64_encoded = false;
            if converts(LambdaRequest::ApiGatewayV2(safe.clone())) {
                return LambdaRequest::ApiGatewayV2(safe);
            }
            let mut bare = ApiGatewayV2httpRequest::default();
            bare.raw_path = Some(MALFORMED_EVENT_PATH.to_owned());
            LambdaRequest::ApiGatewayV2(bare)
        }
        other => other,
    }
}

/// The request lambda_http makes of a Lambda payload (JSON), sanitized first: for tests and
/// fuzzing, which feed events without the runtime.
pub fn request_from_json(payload: &str) -> Result<Request, serde_json::Error> {
    let payload: LambdaRequest = serde_json::from_str(payload)?;
    Ok(Request::from(sanitize(payload)))
}

/// A tower layer for the runtime: sanitizes each event, then hands it to lambda_http.
#[derive(Clone)]
pub struct Sanitized<S>(pub S);

impl<S> Service<LambdaEvent<LambdaRequest>> for Sanitized<S>
where
    S: Service<LambdaEvent<LambdaRequest>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut event: LambdaEvent<LambdaRequest>) -> Self::Future {
        event.payload = sanitize(event.payload);
        self.0.call(event)
    }
}
