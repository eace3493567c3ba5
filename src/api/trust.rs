//! Where a sandbox finds the server's egress CA, shared by the runtime (which mounts it), the
//! agent (which adds it to the sandbox's trust store at boot) and the server (which points the
//! usual CA-bundle variables at the store).

/// The egress CA's certificate inside a sandbox, mounted read-only. Debian's directory of
/// local CAs, so `update-ca-certificates` keeps it in the store.
pub const EGRESS_CA: &str = "/usr/local/share/ca-certificates/langsmith-egress-ca.crt";

/// The trust store the agent makes sure holds the CA (the system's bundles, plus this one
/// when the image has none by this name).
pub const TRUST_STORE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The system bundles of common distributions, each given the CA when present.
pub const SYSTEM_BUNDLES: &[&str] = &[
    TRUST_STORE,                        // Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt", // Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",           // openSUSE
    "/etc/ssl/cert.pem",                // Alpine, BSDs
];

/// Variables that name a CA bundle for tools with their own (set to [`TRUST_STORE`], or to the
/// CA alone for Node, which adds it to its built-in list).
pub const BUNDLE_VARIABLES: &[&str] = &[
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
];
pub const NODE_EXTRA_CA_CERTS: &str = "NODE_EXTRA_CA_CERTS";
