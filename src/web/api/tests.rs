//! Unit tests of the JSON API's pure parts.

use super::*;

#[test]
fn the_session_cookie_is_found_among_others() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::COOKIE,
        HeaderValue::from_static("theme=dark; pulsyon_session=abc123; other=1"),
    );
    assert_eq!(cookie_token(&headers).as_deref(), Some("abc123"));
    let mut none = HeaderMap::new();
    none.insert(header::COOKIE, HeaderValue::from_static("pulsyon_session="));
    assert_eq!(cookie_token(&none), None);
}

#[test]
fn the_worst_services_come_first() {
    let mut v = [
        Verdict::Healthy,
        Verdict::Unknown,
        Verdict::Down,
        Verdict::Degraded,
    ];
    v.sort_by_key(|s| rank(*s));
    assert_eq!(
        v,
        [
            Verdict::Down,
            Verdict::Degraded,
            Verdict::Unknown,
            Verdict::Healthy
        ]
    );
}

#[test]
fn ranges_are_the_three_the_pages_offer() {
    let r = |s: &str| Range {
        range: Some(s.into()),
    };
    assert_eq!(r("24h").window().ok().map(|w| w.1.as_secs()), Some(86_400));
    assert!(r("2h").window().is_err());
    assert_eq!(Range { range: None }.window().ok().map(|w| w.0), Some("1h"));
}

/// The JSON API's decoders over arbitrary bodies: an answer or a 4xx
/// naming the problem, never a panic.
mod fuzz {
    use proptest::prelude::*;

    use super::super::*;

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers
    }

    fn client_error<T: std::fmt::Debug>(result: Result<T, ApiError>) {
        if let Err(err) = result {
            let status = err.into_response().status();
            assert!(status.is_client_error(), "{status}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
            ..ProptestConfig::default()
        })]

        #[test]
        fn bodies_decode_or_are_refused_with_a_4xx(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..6_000),
                "\\{\"(tenant|user|password|api_key|note)\": \"\\PC{0,40}\"(, \"\\PC{0,8}\": \\PC{0,8})?\\}"
                    .prop_map(String::into_bytes),
            ],
        ) {
            let body = Bytes::from(bytes);
            client_error(json_body::<Login>(&json_headers(), &body));
            client_error(json_body::<Note>(&json_headers(), &body));
            client_error(json_body::<Note>(&HeaderMap::new(), &body));
        }

        #[test]
        fn query_values_parse_or_are_refused_with_a_4xx(text in "\\PC{0,24}") {
            client_error(Range { range: Some(text.clone()) }.window());
            client_error(incident_id(&text));
        }
    }
}
