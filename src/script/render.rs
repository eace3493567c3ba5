//! The output layer: turns a script's value into what the CLI and the REPL print. Sandboxes and snapshots
//! are rendered from their typed data with the LangSmith CLI's key order and Go's JSON
//! escaping; lists become tables with `--format pretty`; strings are plain confirmations;
//! `exit(code)` prints nothing and sets the exit status.

use rhai::{Array, Dynamic, Map};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};

use super::table;
use super::{ExitStatus, SandboxObj, SnapshotObj};
use crate::api::egress::{Decision, EgressEntry};
use crate::api::{Sandbox, Snapshot};
use crate::text::{bytes_text, time_text};

/// `--format`: anything but `pretty` is JSON, as in the LangSmith CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Pretty,
}

impl Format {
    pub fn parse(text: &str) -> Self {
        if text == "pretty" {
            Format::Pretty
        } else {
            Format::Json
        }
    }
}

/// The LangSmith CLI's sandbox shape.
#[derive(Serialize)]
pub struct GaSandbox<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_id: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    vcpus: i64,
    #[serde(skip_serializing_if = "is_zero")]
    mem_bytes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    fs_capacity_bytes: Option<i64>,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataplane_url: Option<&'a str>,
    created_at: &'a str,
    updated_at: &'a str,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl<'a> From<&'a Sandbox> for GaSandbox<'a> {
    fn from(s: &'a Sandbox) -> Self {
        GaSandbox {
            id: &s.id,
            name: &s.name,
            snapshot_id: s.snapshot_id.as_deref(),
            vcpus: s.vcpus.unwrap_or(0),
            mem_bytes: s.mem_bytes.unwrap_or(0),
            fs_capacity_bytes: s.fs_capacity_bytes,
            status: &s.status,
            dataplane_url: s.dataplane_url.as_deref(),
            created_at: &s.created_at,
            updated_at: &s.updated_at,
        }
    }
}

/// The LangSmith CLI's snapshot shape.
#[derive(Serialize)]
pub struct GaSnapshot<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    docker_image: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_digest: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_sandbox_id: Option<&'a str>,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_message: Option<&'a str>,
    fs_capacity_bytes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    fs_used_bytes: Option<i64>,
    created_at: &'a str,
    updated_at: &'a str,
}

impl<'a> From<&'a Snapshot> for GaSnapshot<'a> {
    fn from(s: &'a Snapshot) -> Self {
        GaSnapshot {
            id: &s.id,
            name: &s.name,
            docker_image: s.docker_image.as_deref(),
            image_digest: s.image_digest.as_deref(),
            source_sandbox_id: s.source_sandbox_id.as_deref(),
            status: &s.status,
            status_message: s.status_message.as_deref(),
            fs_capacity_bytes: s.fs_capacity_bytes,
            fs_used_bytes: s.fs_used_bytes,
            created_at: &s.created_at,
            updated_at: &s.updated_at,
        }
    }
}

/// Serialises any script value, using the LangSmith CLI's shapes for API objects.
struct Out<'a>(&'a Dynamic);

impl Serialize for Out<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if let Some(s) = v.read_lock::<SandboxObj>() {
            return GaSandbox::from(&s.data).serialize(ser);
        }
        if let Some(s) = v.read_lock::<SnapshotObj>() {
            return GaSnapshot::from(&s.data).serialize(ser);
        }
        if let Some(items) = v.read_lock::<Array>() {
            let mut seq = ser.serialize_seq(Some(items.len()))?;
            for item in items.iter() {
                seq.serialize_element(&Out(item))?;
            }
            return seq.end();
        }
        if let Some(map) = v.read_lock::<Map>() {
            let mut out = ser.serialize_map(Some(map.len()))?;
            for (k, item) in map.iter() {
                out.serialize_entry(k.as_str(), &Out(item))?;
            }
            return out.end();
        }
        if v.is_variant() {
            // Other custom types (e.g. a Command) print as their type name.
            return ser.serialize_str(v.type_name());
        }
        v.serialize(ser)
    }
}

/// Pretty JSON (2-space indent) with Go's escaping of `<`, `>`, `&`, U+2028 and U+2029; those
/// characters can only occur inside strings, so replacing them in the text is exact.
pub fn to_json(value: &Dynamic) -> String {
    let text = serde_json::to_string_pretty(&Out(value)).unwrap_or_else(|e| format!("{e:?}"));
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// What to print on stdout and the exit status.
pub fn render(value: &Dynamic, format: Format) -> (String, u8) {
    if value.is_unit() {
        return (String::new(), 0);
    }
    if let Some(status) = value.read_lock::<ExitStatus>() {
        // Like a process exit status: truncated to 8 bits (-1 → 255).
        return (String::new(), status.0 as u8);
    }
    if value.is_string() {
        return (format!("{value}\n"), 0);
    }
    if format == Format::Pretty
        && let Some(items) = value.read_lock::<Array>()
        && let Some(table) = pretty_table(&items)
    {
        return (table, 0);
    }
    (to_json(value), 0)
}

/// A table for a non-empty list of sandboxes or snapshots.
fn pretty_table(items: &Array) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let sandboxes: Option<Vec<Vec<String>>> = items
        .iter()
        .map(|i| i.read_lock::<SandboxObj>().map(|s| sandbox_row(&s.data)))
        .collect();
    if let Some(rows) = sandboxes {
        let headers = [
            "Name", "Status", "VCPUs", "Mem", "Rootfs", "Snapshot", "Created",
        ];
        return Some(table::render("Sandboxes", &headers, &rows));
    }
    let snapshots: Option<Vec<Vec<String>>> = items
        .iter()
        .map(|i| i.read_lock::<SnapshotObj>().map(|s| snapshot_row(&s.data)))
        .collect();
    if let Some(rows) = snapshots {
        let headers = ["ID", "Name", "Image", "Status", "Size", "Created"];
        return Some(table::render("Snapshots", &headers, &rows));
    }
    // The entries of an egress log (`sandbox egress-log`), as maps.
    let decisions: Option<Vec<Vec<String>>> = items
        .iter()
        .map(|i| {
            rhai::serde::from_dynamic::<EgressEntry>(i)
                .ok()
                .map(|e| egress_row(&e))
        })
        .collect();
    if let Some(rows) = decisions {
        let headers = [
            "Time",
            "Decision",
            "Destination",
            "Rule",
            "Request",
            "Bytes sent",
            "Bytes received",
        ];
        return Some(table::render("Egress decisions", &headers, &rows));
    }
    // `secrets list`: maps of exactly a key and, perhaps, its hosts.
    let secrets: Option<Vec<Vec<String>>> = items
        .iter()
        .map(|i| {
            rhai::serde::from_dynamic::<SecretRow>(i)
                .ok()
                .map(secret_row)
        })
        .collect();
    secrets.map(|rows| table::render("Secrets", &["Key", "Hosts"], &rows))
}

/// A secret as `secrets list` shows it; unknown fields make it some other map.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretRow {
    key: String,
    #[serde(default)]
    configs: Option<Vec<crate::api::secrets::SecretConfig>>,
}

fn secret_row(s: SecretRow) -> Vec<String> {
    let hosts = s.configs.map_or_else(
        || "-".to_string(),
        |configs| {
            configs
                .iter()
                .map(|c| match &c.header_name {
                    Some(header) => format!("{} ({header})", c.host_pattern),
                    None => c.host_pattern.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    vec![s.key, hosts]
}

fn egress_row(e: &EgressEntry) -> Vec<String> {
    let decision = match e.decision {
        Decision::Allowed => "allowed",
        Decision::Denied => "denied",
        Decision::Failed => "failed",
    };
    let rule = match &e.reason {
        Some(reason) => format!("{}: {reason}", e.rule),
        None => e.rule.clone(),
    };
    // Decisions come many a minute: the time to the second, the bytes exact.
    let time = chrono::DateTime::parse_from_rfc3339(&e.time).map_or_else(
        |_| e.time.clone(),
        |t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        },
    );
    // A request on a connection opened for header rules: its line, status and header rule.
    let request = match (&e.request, e.status, &e.header_rule) {
        (None, _, _) => "-".to_string(),
        (Some(line), status, rule) => {
            let mut shown = line.clone();
            if let Some(status) = status {
                shown.push_str(&format!(" → {status}"));
            }
            if let Some(rule) = rule {
                shown.push_str(&format!(" [{rule}]"));
            }
            shown
        }
    };
    vec![
        time,
        decision.to_string(),
        format!("{}:{}", e.host, e.port),
        rule,
        request,
        e.bytes_sent.to_string(),
        e.bytes_received.to_string(),
    ]
}

fn sandbox_row(s: &Sandbox) -> Vec<String> {
    let dash = || "-".to_string();
    vec![
        s.name.clone(),
        s.status.clone(),
        s.vcpus
            .filter(|v| *v != 0)
            .map_or_else(dash, |v| v.to_string()),
        s.mem_bytes
            .filter(|v| *v != 0)
            .map_or_else(dash, bytes_text),
        s.fs_capacity_bytes.map_or_else(dash, bytes_text),
        s.snapshot_id
            .as_deref()
            .map_or_else(dash, |id| match id.char_indices().nth(8) {
                Some((cut, _)) => format!("{}...", &id[..cut]),
                None => id.to_string(),
            }),
        time_text(&s.created_at),
    ]
}

fn snapshot_row(s: &Snapshot) -> Vec<String> {
    vec![
        s.id.clone(),
        s.name.clone(),
        s.docker_image.clone().unwrap_or_else(|| "-".into()),
        s.status.clone(),
        s.fs_used_bytes.map_or_else(|| "-".into(), bytes_text),
        time_text(&s.created_at),
    ]
}

#[cfg(test)]
mod tests;
