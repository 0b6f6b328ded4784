use http::HeaderMap;

/// What a request's `content-type` says about gRPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrpcContentType<'a> {
    /// `application/grpc` or `application/grpc+proto`: protobuf messages Warden can decode.
    Proto,
    /// `application/grpc+<codec>` with another codec (e.g. `json`): gRPC, but not protobuf.
    OtherCodec(&'a str),
    /// Not gRPC at all (including gRPC-Web, which has its own framing).
    NotGrpc,
}

pub(crate) fn classify_content_type(headers: &HeaderMap) -> GrpcContentType<'_> {
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return GrpcContentType::NotGrpc;
    };
    // What every gRPC client sends, compared whole before any parsing.
    if matches!(
        value.as_bytes(),
        b"application/grpc" | b"application/grpc+proto"
    ) {
        return GrpcContentType::Proto;
    }
    let Ok(value) = value.to_str() else {
        return GrpcContentType::NotGrpc;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some(rest) = strip_prefix_ignore_case(essence, "application/grpc") else {
        return GrpcContentType::NotGrpc;
    };
    match rest.strip_prefix('+') {
        None if rest.is_empty() => GrpcContentType::Proto,
        None => GrpcContentType::NotGrpc,
        Some(codec) if codec.eq_ignore_ascii_case("proto") => GrpcContentType::Proto,
        Some(codec) => GrpcContentType::OtherCodec(codec),
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(ct: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
        headers
    }

    #[test]
    fn protobuf_grpc_content_types_are_recognised() {
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC; charset=x",
        ] {
            assert_eq!(
                classify_content_type(&with(ct)),
                GrpcContentType::Proto,
                "{ct}"
            );
        }
    }

    #[test]
    fn other_codecs_and_grpc_web_are_not_protobuf() {
        assert_eq!(
            classify_content_type(&with("application/grpc+json")),
            GrpcContentType::OtherCodec("json")
        );
        for ct in ["application/grpc-web", "application/json", "text/plain"] {
            assert_eq!(
                classify_content_type(&with(ct)),
                GrpcContentType::NotGrpc,
                "{ct}"
            );
        }
        assert_eq!(
            classify_content_type(&HeaderMap::new()),
            GrpcContentType::NotGrpc
        );
    }
}
