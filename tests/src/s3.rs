//! The S3 side of the S3 sink's tests: SeaweedFS on 127.0.0.1:8333 (`scripts/services up s3`; credentials
//! testkey/testsecret), spoken to with curl's SigV4 signing, and Avro and Parquet files read with fastavro and pyarrow (PyPI; their Python
//! from `scripts/services avro-python-bin`), so the tests do not check the sink against its own code.

use std::io::Write;
use std::process::{Command, Stdio};

pub const S3_URL: &str = "http://127.0.0.1:8333";

fn curl(path: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "-f", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "testkey:testsecret"])
        .arg(format!("{S3_URL}{path}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET {path}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Every object key under `prefix`, sorted.
pub fn list(bucket: &str, prefix: &str) -> Vec<String> {
    list_sizes(bucket, prefix).into_iter().map(|(k, _)| k).collect()
}

/// Every object key under `prefix` with its size in bytes, sorted by key.
pub fn list_sizes(bucket: &str, prefix: &str) -> Vec<(String, u64)> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("/{bucket}?list-type=2&max-keys=1000&prefix={}", encode(prefix));
        if let Some(t) = &token {
            path.push_str(&format!("&continuation-token={}", encode(t)));
        }
        let xml = String::from_utf8_lossy(&curl(&path)).into_owned();
        for contents in xml.split("<Contents>").skip(1) {
            let key = tags(&format!("<Contents>{contents}"), "Key").into_iter().next().unwrap_or_default();
            let size = tags(contents, "Size").into_iter().next().and_then(|s| s.parse().ok()).unwrap_or(0);
            keys.push((key, size));
        }
        token = tags(&xml, "NextContinuationToken").into_iter().next();
        if token.is_none() {
            break;
        }
    }
    keys.sort();
    keys
}

/// The multipart uploads begun and not completed or aborted in `bucket`: (object key, upload id), by key.
/// (`uploads=` with an empty value: curl signs a bare `uploads` wrongly.)
pub fn multipart_uploads(bucket: &str) -> Vec<(String, String)> {
    let xml = String::from_utf8_lossy(&curl(&format!("/{bucket}?uploads="))).into_owned();
    let mut uploads: Vec<(String, String)> = xml
        .split("<Upload>")
        .skip(1)
        .map(|u| (tags(u, "Key").into_iter().next().unwrap_or_default(), tags(u, "UploadId").into_iter().next().unwrap_or_default()))
        .collect();
    uploads.sort();
    uploads
}

/// The parts stored so far in a multipart upload, with their sizes.
pub fn parts(bucket: &str, key: &str, upload_id: &str) -> Vec<u64> {
    let path = format!("/{bucket}/{}?uploadId={}", key.split('/').map(encode).collect::<Vec<_>>().join("/"), encode(upload_id));
    let xml = String::from_utf8_lossy(&curl(&path)).into_owned();
    xml.split("<Part>").skip(1).filter_map(|p| tags(p, "Size").into_iter().next().and_then(|s| s.parse().ok())).collect()
}

/// GET an object with an SSE-C key (base64 key, base64 MD5), or without one: the HTTP status and the body.
/// The request is presigned by the AWS SDK and sent by curl: curl 7.88's own SigV4 signing gets the SSE-C
/// headers wrong, and the SDK cannot parse SeaweedFS's answer (its key-MD5 response header).
pub fn get_sse_c(bucket: &str, key: &str, customer_key: Option<(&str, &str)>) -> (u16, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let presigned = runtime.block_on(async {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("testkey", "testsecret", None, None, "tests"))
            .load()
            .await;
        let config = aws_sdk_s3::config::Builder::from(&shared).endpoint_url(S3_URL).force_path_style(true).build();
        let mut request = aws_sdk_s3::Client::from_conf(config).get_object().bucket(bucket).key(key);
        if let Some((k, md5)) = customer_key {
            request = request.sse_customer_algorithm("AES256").sse_customer_key(k).sse_customer_key_md5(md5);
        }
        let expires = aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(300)).unwrap();
        request.presigned(expires).await.expect("a presigned GET")
    });
    let mut command = Command::new("curl");
    command.args(["-sS", "-w", "\n%{http_code}"]);
    for (name, value) in presigned.headers() {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    let out = command.arg(presigned.uri()).output().expect("curl");
    assert!(out.status.success(), "GET {key}: {}", String::from_utf8_lossy(&out.stderr));
    let mut body = out.stdout;
    let at = body.iter().rposition(|&b| b == b'\n').expect("the status line curl adds");
    let status = String::from_utf8_lossy(&body[at + 1..]).trim().parse().expect("an HTTP status");
    body.truncate(at);
    (status, body)
}

pub fn get(bucket: &str, key: &str) -> Vec<u8> {
    curl(&format!("/{bucket}/{}", key.split('/').map(encode).collect::<Vec<_>>().join("/")))
}

/// The lines of a JSON-lines object (gunzipped when its key ends in .gz).
pub fn json_lines(bucket: &str, key: &str) -> Vec<serde_json::Value> {
    let bytes = get(bucket, key);
    let text = if key.ends_with(".gz") {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out).expect("gzip");
        out
    } else {
        String::from_utf8(bytes).expect("utf-8")
    };
    assert!(text.is_empty() || text.ends_with('\n'), "every line ends with a newline");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{key}: {l:?}: {e}"))).collect()
}

/// An Avro object read with fastavro: its writer schema and its records.
pub fn avro(bucket: &str, key: &str) -> (serde_json::Value, Vec<serde_json::Value>) {
    let mut child = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/py/read_avro.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python with fastavro (scripts/services avro-python-bin)");
    child.stdin.take().unwrap().write_all(&get(bucket, key)).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "fastavro could not read {key}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
    let schema = lines.next().expect("the writer schema");
    (schema, lines.collect())
}

/// A Parquet object read with pyarrow: its schema as Parquet prints it, its footer's key-value metadata, and
/// its rows.
pub fn parquet(bucket: &str, key: &str) -> (String, serde_json::Value, Vec<serde_json::Value>) {
    let mut child = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/py/read_parquet.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python with pyarrow (scripts/services avro-python-bin)");
    child.stdin.take().unwrap().write_all(&get(bucket, key)).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "pyarrow could not read {key}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
    let schema = lines.next().expect("the schema").as_str().unwrap().to_string();
    let metadata = lines.next().expect("the footer's metadata");
    (schema, metadata, lines.collect())
}

/// The Python that reads Avro and Parquet files (fastavro, pyarrow).
fn python() -> String {
    crate::service_tool("CONNECT_TEST_AVRO_PYTHON", "avro-python-bin")
}

fn tags(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| {
            rest.split_once(&close).map(|(v, _)| {
                v.replace("&amp;", "&").replace("&quot;", "\"").replace("&apos;", "'").replace("&lt;", "<").replace("&gt;", ">")
            })
        })
        .collect()
}

/// Percent-encoding of a query value or a path segment (everything but unreserved characters).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}
