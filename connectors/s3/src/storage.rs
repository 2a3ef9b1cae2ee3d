//! The store: aws-sdk-s3 against AWS or any S3 endpoint (`store.url`), one object per file: a single PUT, or
//! a multipart upload in `s3.part.size` parts for a larger file. An upload either completes or leaves no
//! object (an unfinished multipart upload is aborted), so a reader never sees half a file.

use crate::config::{CustomerKey, S3SinkConfig};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ObjectCannedAcl, ServerSideEncryption};
use bytes::Bytes;
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

    /// Store a whole file under `key` (replacing an object of that name: a file written again after a crash).
    pub async fn upload(&self, key: &str, bytes: Bytes) -> Result<(), UploadError> {
        if bytes.len() <= self.part_size {
            return self.put(key, bytes).await;
        }
        self.multipart(key, bytes).await
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

    async fn multipart(&self, key: &str, bytes: Bytes) -> Result<(), UploadError> {
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
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let result = self.parts(key, &upload_id, &bytes).await;
        if result.is_err() {
            // Nothing half-written stays behind (the parts would cost storage until a lifecycle rule removed them).
            let _ = self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(&upload_id).send().await;
        }
        result
    }

    async fn parts(&self, key: &str, upload_id: &str, bytes: &Bytes) -> Result<(), UploadError> {
        let mut completed = Vec::new();
        for (i, start) in (0..bytes.len()).step_by(self.part_size).enumerate() {
            let number = i as i32 + 1;
            let chunk = bytes.slice(start..(start + self.part_size).min(bytes.len()));
            let request = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk));
            let part = with_customer_key!(request, &self.sse_customer_key)
                .send()
                .await
                .map_err(|e| classify(&format!("part {number} of {key}"), e))?;
            completed.push(CompletedPart::builder().part_number(number).set_e_tag(part.e_tag().map(str::to_string)).build());
        }
        let complete = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build());
        // A bucket policy that requires SSE-C checks the completion too.
        with_customer_key!(complete, &self.sse_customer_key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&format!("completing the upload of {key}"), e))
    }
}
