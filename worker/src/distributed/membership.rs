//! Group membership on Kafka's group coordinator with protocol type `connect`, as Kafka Connect's
//! `WorkerCoordinator` does it: FindCoordinator, JoinGroup (with the MEMBER_ID_REQUIRED round trip),
//! SyncGroup, Heartbeat and LeaveGroup. The caller (the cluster loop) decides what to do on each outcome.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

use super::protocol::{Assignment, ProtocolError, WorkerMetadata, PROTOCOL_COMPATIBLE};
use super::wire::{Connection, WireError};

const FIND_COORDINATOR_VERSION: i16 = 2;
const JOIN_GROUP_VERSION: i16 = 5;
const SYNC_GROUP_VERSION: i16 = 3;
const HEARTBEAT_VERSION: i16 = 3;
const LEAVE_GROUP_VERSION: i16 = 1;

const PROTOCOL_TYPE: &str = "connect";

// Kafka error codes the member acts on.
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("no group coordinator reachable through {0}")]
    NoCoordinator(String),
    #[error("the group coordinator moved or is loading (error {0})")]
    CoordinatorMoved(i16),
    #[error("a rebalance is under way")]
    Rebalance,
    #[error("the coordinator no longer knows this member (its session expired)")]
    UnknownMember,
    #[error("this member's generation is stale")]
    IllegalGeneration,
    #[error("bad group message: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("the group coordinator answered error {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka { code: i16, message: Option<String> },
}

impl GroupError {
    fn from_code(code: i16, message: Option<String>) -> Self {
        match code {
            COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR => GroupError::CoordinatorMoved(code),
            REBALANCE_IN_PROGRESS => GroupError::Rebalance,
            UNKNOWN_MEMBER_ID => GroupError::UnknownMember,
            ILLEGAL_GENERATION => GroupError::IllegalGeneration,
            code => GroupError::Kafka { code, message },
        }
    }

    /// The connection to the coordinator is of no further use.
    pub fn needs_new_coordinator(&self) -> bool {
        matches!(self, GroupError::Wire(_) | GroupError::CoordinatorMoved(_) | GroupError::NoCoordinator(_))
    }
}

#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub bootstrap: Vec<String>,
    pub group_id: String,
    pub client_id: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub request_timeout: Duration,
    /// TLS and SASL for every connection to a broker.
    pub security: super::wire::Security,
}

/// The result of a join: this member's generation, and, for the leader, every member's metadata.
#[derive(Debug)]
pub struct Joined {
    pub generation: i32,
    pub member_id: String,
    pub leader_id: String,
    /// Present on the leader only.
    pub members: Option<Vec<(String, WorkerMetadata)>>,
}

pub struct Member {
    settings: GroupSettings,
    coordinator: Option<Connection>,
    pub member_id: String,
    pub generation: i32,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

impl Member {
    pub fn new(settings: GroupSettings) -> Self {
        Member { settings, coordinator: None, member_id: String::new(), generation: -1 }
    }

    pub fn settings(&self) -> &GroupSettings {
        &self.settings
    }

    /// Forget the coordinator connection (after an error), so the next call finds it again.
    pub fn drop_coordinator(&mut self) {
        self.coordinator = None;
    }

    /// Forget the member id: the next join starts as a new member.
    pub fn reset(&mut self) {
        self.member_id.clear();
        self.generation = -1;
    }

    async fn coordinator(&mut self) -> Result<&mut Connection, GroupError> {
        if self.coordinator.is_none() {
            self.coordinator = Some(self.find_coordinator().await?);
        }
        Ok(self.coordinator.as_mut().expect("set above"))
    }

    async fn find_coordinator(&self) -> Result<Connection, GroupError> {
        let timeout = self.settings.request_timeout;
        let mut last_error = None;
        for broker in &self.settings.bootstrap {
            let attempt = async {
                let mut conn = Connection::open(broker, &self.settings.client_id, &self.settings.security, timeout).await?;
                let request = FindCoordinatorRequest::default().with_key(str_bytes(&self.settings.group_id)).with_key_type(0);
                let response = conn.call(request, FIND_COORDINATOR_VERSION, timeout).await?;
                if response.error_code != 0 {
                    return Err(GroupError::from_code(response.error_code, response.error_message.map(|m| m.to_string())));
                }
                let address = format!("{}:{}", response.host.as_str(), response.port);
                if address == conn.address() {
                    return Ok(conn);
                }
                Ok(Connection::open(&address, &self.settings.client_id, &self.settings.security, timeout).await?)
            };
            match attempt.await {
                Ok(conn) => return Ok(conn),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| GroupError::NoCoordinator(self.settings.bootstrap.join(","))))
    }

    /// Join the group (as a new member first when there is no member id) and wait for the
    /// coordinator's answer, which comes when every member has joined or the rebalance timeout ends.
    pub async fn join(&mut self, metadata: &WorkerMetadata) -> Result<Joined, GroupError> {
        let metadata = metadata.encode();
        // The coordinator may hold the join for the whole rebalance timeout.
        let timeout = self.settings.rebalance_timeout + self.settings.request_timeout;
        for _ in 0..2 {
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(str_bytes(&self.settings.group_id)))
                .with_session_timeout_ms(self.settings.session_timeout.as_millis() as i32)
                .with_rebalance_timeout_ms(self.settings.rebalance_timeout.as_millis() as i32)
                .with_member_id(str_bytes(&self.member_id))
                .with_protocol_type(str_bytes(PROTOCOL_TYPE))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(str_bytes(PROTOCOL_COMPATIBLE))
                    .with_metadata(metadata.clone())]);
            let response = self.coordinator().await?.call(request, JOIN_GROUP_VERSION, timeout).await?;
            if response.error_code == MEMBER_ID_REQUIRED {
                // KIP-394: the coordinator hands out the member id first; join again with it.
                self.member_id = response.member_id.to_string();
                continue;
            }
            if response.error_code != 0 {
                if response.error_code == UNKNOWN_MEMBER_ID {
                    self.reset();
                }
                return Err(GroupError::from_code(response.error_code, None));
            }
            self.member_id = response.member_id.to_string();
            self.generation = response.generation_id;
            let leader_id = response.leader.to_string();
            let members = if leader_id == self.member_id {
                let mut members = Vec::with_capacity(response.members.len());
                for m in response.members {
                    members.push((m.member_id.to_string(), WorkerMetadata::decode(m.metadata)?));
                }
                Some(members)
            } else {
                None
            };
            return Ok(Joined { generation: self.generation, member_id: self.member_id.clone(), leader_id, members });
        }
        Err(GroupError::Kafka { code: MEMBER_ID_REQUIRED, message: Some("the coordinator asked for a member id twice".into()) })
    }

    /// SyncGroup: the leader sends every member's assignment; the others send none. Returns this member's.
    pub async fn sync(&mut self, assignments: Vec<(String, Bytes)>) -> Result<Assignment, GroupError> {
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&self.settings.group_id)))
            .with_generation_id(self.generation)
            .with_member_id(str_bytes(&self.member_id))
            .with_assignments(
                assignments
                    .into_iter()
                    .map(|(member, bytes)| SyncGroupRequestAssignment::default().with_member_id(str_bytes(&member)).with_assignment(bytes))
                    .collect(),
            );
        let timeout = self.settings.rebalance_timeout + self.settings.request_timeout;
        let response = self.coordinator().await?.call(request, SYNC_GROUP_VERSION, timeout).await?;
        if response.error_code != 0 {
            if response.error_code == UNKNOWN_MEMBER_ID {
                self.reset();
            }
            return Err(GroupError::from_code(response.error_code, None));
        }
        if response.assignment.is_empty() {
            // A member the leader did not know of when it assigned (it joined late): rejoin.
            return Err(GroupError::Rebalance);
        }
        Ok(Assignment::decode(response.assignment)?)
    }

    /// A heartbeat sender for this generation, on a connection of its own, so heartbeats go on while the
    /// member's owner is busy starting and stopping connectors.
    pub fn heartbeater(&self) -> Heartbeater {
        Heartbeater {
            settings: self.settings.clone(),
            address: self.coordinator.as_ref().map(|c| c.address().to_string()),
            conn: None,
            member_id: self.member_id.clone(),
            generation: self.generation,
        }
    }

    /// Leave the group so the others rebalance at once instead of after the session timeout. Over a fresh
    /// connection: the current one may still owe the answer to a request cancelled by the stop.
    pub async fn leave(&mut self) {
        if self.member_id.is_empty() {
            return;
        }
        self.coordinator = None;
        let request = LeaveGroupRequest::default()
            .with_group_id(GroupId(str_bytes(&self.settings.group_id)))
            .with_member_id(str_bytes(&self.member_id));
        let timeout = Duration::from_secs(5);
        if let Ok(conn) = self.coordinator().await {
            if let Err(e) = conn.call(request, LEAVE_GROUP_VERSION, timeout).await {
                tracing::warn!(error = %e, "leaving the worker group failed; the others rebalance after the session timeout");
            }
        }
        self.reset();
    }
}

/// Sends one generation's heartbeats ([`Member::heartbeater`]).
pub struct Heartbeater {
    settings: GroupSettings,
    address: Option<String>,
    conn: Option<Connection>,
    member_id: String,
    generation: i32,
}

impl Heartbeater {
    /// One heartbeat, answered within `timeout`.
    pub async fn beat(&mut self, timeout: Duration) -> Result<(), GroupError> {
        if self.conn.is_none() {
            let address = self.address.clone().ok_or_else(|| GroupError::NoCoordinator(self.settings.bootstrap.join(",")))?;
            self.conn = Some(Connection::open(&address, &self.settings.client_id, &self.settings.security, timeout).await?);
        }
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes(&self.settings.group_id)))
            .with_generation_id(self.generation)
            .with_member_id(str_bytes(&self.member_id));
        let conn = self.conn.as_mut().expect("opened above");
        match conn.call(request, HEARTBEAT_VERSION, timeout).await {
            Ok(response) if response.error_code == 0 => Ok(()),
            Ok(response) => Err(GroupError::from_code(response.error_code, None)),
            Err(e) => {
                // A connection that failed or timed out may still owe an answer: never reuse it.
                self.conn = None;
                Err(e.into())
            }
        }
    }
}
