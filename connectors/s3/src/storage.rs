//! The store: aws-sdk-s3 against AWS or any S3 endpoint (`store.url`), one object per file: a single PUT, or
//! a multipart upload in `s3.part.size` parts for a larger file, whose parts are sent while the file is still
//! being written. An object exists only once its upload completes, so a reader never sees half a file; an
//! upload the store refuses, or one of a file a task drops, is aborted.

use crate::config::{CustomerKey, S3SinkConfig};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ObjectCannedAcl, ServerSideEncryption};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Duration;

/// Why an upload did not complete.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UploadError {
    /// The store cannot be reached or is busy (network, timeouts, 5xx, throttling): try again later.
    #[error("{0}")]
    Retriable(String),
    /// The setup is wrong (no such bucket, access denied, bad credentials).
    #[error("{0}")]
    Fatal(String),
}

pub struct Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    part_size: usize,
    sse: Option<ServerSideEncryption>,
    sse_kms_key: Option<String>,
    sse_customer_key: Option<CustomerKey>,
    acl: Option<ObjectCannedAcl>,
}

/// One object on its way to the store: the parts cut from its file and not yet stored, and the multipart
/// upload they go to once the first one is sent. A file larger than a part streams its parts out while it is
/// written, so a task holds about a part per open file rather than whole files.
pub struct ObjectUpload {
    key: String,
    multipart: Option<Multipart>,
    waiting: VecDeque<Bytes>,
    /// Why the store refused it for good: its parts are gone, so it is never tried again (the task fails and
    /// writes the file anew from the committed offset).
    refused: Option<String>,
}

struct Multipart {
    id: String,
    stored: Vec<CompletedPart>,
    /// Bytes in the parts stored.
    stored_bytes: i64,
}

impl ObjectUpload {
    pub fn new(key: String) -> Self {
        ObjectUpload { key, multipart: None, waiting: VecDeque::new(), refused: None }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// Parts cut from the file, in order, not yet stored.
    pub fn waiting(&self) -> &VecDeque<Bytes> {
        &self.waiting
    }

    /// Parts cut from the file, in order, to send.
    pub fn waiting_mut(&mut self) -> &mut VecDeque<Bytes> {
        &mut self.waiting
    }

    /// Parts stored so far in its multipart upload.
    pub fn parts_stored(&self) -> usize {
        self.multipart.as_ref().map_or(0, |m| m.stored.len())
    }
}

/// How long a stop or a revocation waits for the store to abort the uploads it leaves.
const ABORT_BUDGET: Duration = Duration::from_secs(10);

/// SSE-C's algorithm: S3 knows no other.
const SSE_CUSTOMER_ALGORITHM: &str = "AES256";

/// `request` with the SSE-C key's three headers when there is a key. Every request of an upload carries them
/// (S3 keeps no key); a macro because each request's builder is a type of its own.
macro_rules! with_customer_key {
    ($request:expr, $key:expr) => {
        match $key {
            Some(c) => $request.sse_customer_algorithm(SSE_CUSTOMER_ALGORITHM).sse_customer_key(&c.key).sse_customer_key_md5(&c.md5),
            None => $request,
        }
    };
}

/// A store that answers is retried only for what may pass (5xx, 408, 429, throttling, timeouts); any other
/// answer (access denied, no such bucket, wrong region, an object too large) would be refused forever, so it
/// fails the task with the store's words. No answer at all (refused, reset, timed out) is an outage.
fn classify<E: std::error::Error + Send + Sync + 'static + aws_sdk_s3::error::ProvideErrorMetadata>(
    what: &str,
    error: aws_sdk_s3::error::SdkError<E>,
) -> UploadError {
    use aws_sdk_s3::error::SdkError;
    match &error {
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("unknown");
            let message = e.err().message().unwrap_or("");
            let status = e.raw().status().as_u16();
            let text = format!("{what}: {status} {code} {message}");
            let passing = status >= 500
                || status == 408
                || status == 429
                || matches!(code, "RequestTimeout" | "SlowDown" | "Throttling" | "RequestTimeTooSkewed");
            if passing {
                UploadError::Retriable(text)
            } else {
                UploadError::Fatal(text)
            }
        }
        other => UploadError::Retriable(format!("{what}: {}", aws_sdk_s3::error::DisplayErrorContext(other))),
    }
}

impl Store {
    pub async fn new(config: &S3SinkConfig) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(config.region.clone()));
        if let Some((id, secret)) = &config.credentials {
            loader = loader.credentials_provider(Credentials::new(id, secret, None, None, "connect-rs"));
        }
        let shared = loader.load().await;
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(120))
            // A store that takes packets and never answers must not hold a put past the consumer's poll interval.
            .operation_timeout(Duration::from_secs(240))
            .build();
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.path_style)
            .timeout_config(timeouts)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(config.part_retries + 1))
            // Checksums only where S3 requires them: stores other than AWS do not all take the newer ones.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(url) = &config.store_url {
            builder = builder.endpoint_url(url);
        }
        // S3 takes one kind of encryption per request. As Confluent's sink: KMS when `s3.ssea.name=aws:kms`
        // names a key, else the customer's key when there is one, else `s3.ssea.name`.
        let kms = config.sse_algorithm.as_deref().is_some_and(|a| a.eq_ignore_ascii_case("aws:kms")) && config.sse_kms_key.is_some();
        let sse_customer_key = config.sse_customer_key.clone().filter(|_| !kms);
        if kms && config.sse_customer_key.is_some() {
            tracing::warn!(
                "s3.sse.customer.key is ignored: s3.ssea.name=aws:kms with s3.sse.kms.key.id takes precedence, as in Confluent's sink"
            );
        }
        if sse_customer_key.is_some() && config.store_url.as_deref().is_some_and(|u| u.starts_with("http://")) {
            tracing::warn!("s3.sse.customer.key over plain http:// sends the key in clear text (AWS refuses SSE-C without TLS)");
        }
        Store {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            part_size: config.part_size,
            sse: config.sse_algorithm.as_deref().filter(|_| sse_customer_key.is_none()).map(ServerSideEncryption::from),
            sse_kms_key: config.sse_kms_key.clone().filter(|_| sse_customer_key.is_none()),
            sse_customer_key,
            acl: config.acl.as_deref().map(ObjectCannedAcl::from),
        }
    }

    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// Send the parts waiting in `upload`, starting its multipart upload first if need be. A part leaves the
    /// queue only once stored, so after a failure the same part is sent again with the same number.
    pub async fn send_parts(&self, upload: &mut ObjectUpload) -> Result<(), UploadError> {
        let result = self.send_waiting(upload).await;
        self.settle(upload, result).await
    }

    async fn send_waiting(&self, upload: &mut ObjectUpload) -> Result<(), UploadError> {
        if let Some(reason) = &upload.refused {
            return Err(UploadError::Fatal(reason.clone()));
        }
        if upload.waiting.is_empty() {
            return Ok(());
        }
        let key = upload.key.clone();
        let id = match &upload.multipart {
            Some(m) => m.id.clone(),
            None => {
                let id = self.start_multipart(&key).await?;
                upload.multipart = Some(Multipart { id: id.clone(), stored: Vec::new(), stored_bytes: 0 });
                id
            }
        };
        while let Some(chunk) = upload.waiting.front() {
            let multipart = upload.multipart.as_mut().expect("started above");
            let number = multipart.stored.len() as i32 + 1;
            let request = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(&key)
                .upload_id(&id)
                .part_number(number)
                .body(ByteStream::from(chunk.clone()));
            let part = with_customer_key!(request, &self.sse_customer_key)
                .send()
                .await
                .map_err(|e| classify(&format!("part {number} of {key}"), e))?;
            multipart.stored.push(CompletedPart::builder().part_number(number).set_e_tag(part.e_tag().map(str::to_string)).build());
            multipart.stored_bytes += chunk.len() as i64;
            upload.waiting.pop_front();
        }
        Ok(())
    }

    /// Store the whole object: a single PUT when it is one part that nothing was streamed for, else the
    /// remaining parts and the completion.
    pub async fn finish(&self, upload: &mut ObjectUpload) -> Result<(), UploadError> {
        let result = if upload.refused.is_none() && upload.multipart.is_none() && upload.waiting.len() <= 1 {
            let bytes = upload.waiting.front().cloned().unwrap_or_default();
            let put = self.put(&upload.key, bytes).await;
            if put.is_ok() {
                upload.waiting.clear();
            }
            put
        } else {
            self.complete(upload).await
        };
        self.settle(upload, result).await
    }

    /// After a failure the store will repeat (anything but an outage), the multipart upload is aborted (its
    /// parts would cost storage until a lifecycle rule removed them) and the object is never tried again: sent
    /// once more, what is left of it would make a truncated object. After an outage it stays, to be continued.
    async fn settle(&self, upload: &mut ObjectUpload, result: Result<(), UploadError>) -> Result<(), UploadError> {
        if let Err(UploadError::Fatal(reason)) = &result {
            if upload.refused.is_none() {
                upload.refused = Some(reason.clone());
                self.abort(upload).await;
            }
        }
        result
    }

    async fn complete(&self, upload: &mut ObjectUpload) -> Result<(), UploadError> {
        self.send_waiting(upload).await?;
        let multipart = upload.multipart.as_ref().expect("parts were sent");
        let key = &upload.key;
        let complete = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&multipart.id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(multipart.stored.clone())).build());
        // A bucket policy that requires SSE-C checks the completion too.
        if let Err(e) = with_customer_key!(complete, &self.sse_customer_key).send().await {
            use aws_sdk_s3::error::ProvideErrorMetadata;
            // A completion sent again after its answer was lost finds no upload: the object may be stored.
            let gone = e.code() == Some("NoSuchUpload");
            let error = classify(&format!("completing the upload of {key}"), e);
            if !(gone && self.holds(key, multipart.stored_bytes).await) {
                return Err(error);
            }
            tracing::info!(key = %key, "the upload was completed by an earlier attempt whose answer was lost");
        }
        upload.multipart = None;
        Ok(())
    }

    /// Whether the store holds `key` with exactly `size` bytes.
    async fn holds(&self, key: &str, size: i64) -> bool {
        let head = self.client.head_object().bucket(&self.bucket).key(key);
        let head = with_customer_key!(head, &self.sse_customer_key).send().await;
        head.ok().and_then(|h| h.content_length()) == Some(size)
    }

    /// Abort the multipart uploads of these objects, within [`ABORT_BUDGET`] in all: a stop or a revocation
    /// must not wait for a store that is down (what is left, a lifecycle rule removes).
    pub async fn abort_all(&self, mut uploads: Vec<ObjectUpload>) {
        uploads.retain(|u| u.multipart.is_some());
        if uploads.is_empty() {
            return;
        }
        let count = uploads.len();
        let all = async {
            for upload in &mut uploads {
                self.abort(upload).await;
            }
        };
        if tokio::time::timeout(ABORT_BUDGET, all).await.is_err() {
            let left = uploads.iter().filter(|u| u.multipart.is_some()).count();
            tracing::warn!(left, of = count, "gave up aborting multipart uploads; a bucket lifecycle rule removes what is left");
        }
    }

    /// Give up an object's multipart upload, if one was started (best effort: a store that does not answer
    /// keeps the parts until a lifecycle rule removes them).
    async fn abort(&self, upload: &mut ObjectUpload) {
        if let Some(multipart) = upload.multipart.take() {
            let sent = self.client.abort_multipart_upload().bucket(&self.bucket).key(&upload.key).upload_id(&multipart.id).send().await;
            if let Err(e) = sent {
                tracing::warn!(key = %upload.key, "could not abort the multipart upload: {}", classify("abort", e));
            }
        }
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<(), UploadError> {
        let mut request = self.client.put_object().bucket(&self.bucket).key(key).body(ByteStream::from(bytes));
        if let Some(sse) = &self.sse {
            request = request.server_side_encryption(sse.clone());
        }
        if let Some(kms) = &self.sse_kms_key {
            request = request.ssekms_key_id(kms);
        }
        request = with_customer_key!(request, &self.sse_customer_key);
        if let Some(acl) = &self.acl {
            request = request.acl(acl.clone());
        }
        request.send().await.map(|_| ()).map_err(|e| classify(&format!("PUT {key}"), e))
    }

    async fn start_multipart(&self, key: &str) -> Result<String, UploadError> {
        let mut create = self.client.create_multipart_upload().bucket(&self.bucket).key(key);
        if let Some(sse) = &self.sse {
            create = create.server_side_encryption(sse.clone());
        }
        if let Some(kms) = &self.sse_kms_key {
            create = create.ssekms_key_id(kms);
        }
        create = with_customer_key!(create, &self.sse_customer_key);
        if let Some(acl) = &self.acl {
            create = create.acl(acl.clone());
        }
        let created = create.send().await.map_err(|e| classify(&format!("multipart upload of {key}"), e))?;
        created.upload_id().map(str::to_string).ok_or_else(|| UploadError::Retriable(format!("multipart upload of {key}: no upload id")))
    }
}
