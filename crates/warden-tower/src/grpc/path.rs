/// A gRPC method path, `/package.Service/Method`, checked strictly.
///
/// The service is one or more dot-separated identifiers and the method one identifier, all of
/// ASCII letters, digits and `_`. Anything else (extra segments, empty segments, `%`-escapes,
/// other characters) is refused rather than guessed at, so two spellings can never name one
/// method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MethodPath<'a> {
    pub(crate) service: &'a str,
    pub(crate) method: &'a str,
}

impl<'a> MethodPath<'a> {
    pub(crate) fn parse(path: &'a str) -> Result<Self, &'static str> {
        let rest = path
            .strip_prefix('/')
            .ok_or("the path must start with `/`")?;
        let (service, method) = rest
            .split_once('/')
            .ok_or("the path must be `/package.Service/Method`")?;
        if service.is_empty() {
            return Err("the service name is empty");
        }
        if method.is_empty() {
            return Err("the method name is empty");
        }
        if method.contains('/') {
            return Err("the path has more than two segments");
        }
        if !service.split('.').all(is_identifier) {
            return Err("the service name is not a dot-separated list of identifiers");
        }
        if !is_identifier(method) {
            return Err("the method name is not an identifier");
        }
        Ok(Self { service, method })
    }
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_paths_split_into_service_and_method() {
        assert_eq!(
            MethodPath::parse("/pkg.v1.Svc/Do_It"),
            Ok(MethodPath {
                service: "pkg.v1.Svc",
                method: "Do_It"
            })
        );
        assert!(MethodPath::parse("/Svc/M").is_ok());
    }

    #[test]
    fn malformed_paths_are_refused() {
        for path in [
            "",
            "/",
            "pkg.Svc/M",
            "//Method",
            "/pkg.Svc/",
            "/pkg.Svc/Method/extra",
            "/pkg..Svc/M",
            "/pkg.Svc/M%65",
            "/pkg.Svc/%C3%A9",
            "/pkg.Svc/M-x",
            "/pkg.Svc/1M",
            "/pkg.Svc/Mé",
        ] {
            assert!(MethodPath::parse(path).is_err(), "{path:?} was accepted");
        }
    }
}
