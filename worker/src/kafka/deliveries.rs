//! A producer whose deliveries are reported by ticket: each record carries its sequence number as the
//! delivery opaque, the delivery callback appends `(ticket, outcome)` to a shared list, and the task
//! takes the outcomes in ticket order. No allocation, channel or future per record, which is what
//! `FutureProducer` costs (a oneshot channel and a boxed sender per message), on the source path where
//! every record is produced.
//!
//! One [`Tickets`] per producer; the producer is used by one task, so tickets are handed out and taken
//! back on that task alone and only the callback's list is shared.

use futures::task::AtomicWaker;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, ProducerContext, ThreadedProducer};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// Where Kafka put a record: partition and offset.
pub type Delivered = (i32, i64);

/// A record's fate: stored at (partition, offset), or refused for good (librdkafka retried already).
pub type Outcome = Result<Delivered, KafkaError>;

/// The producer of a source task.
pub type TicketProducer = ThreadedProducer<DeliveryReports>;

/// Create a [`TicketProducer`] and the [`Tickets`] that take its outcomes.
pub fn ticket_producer(config: &ClientConfig) -> KafkaResult<(TicketProducer, Tickets)> {
    let producer = TicketProducer::from_config_and_context(config, DeliveryReports::default())?;
    let reports = rdkafka::producer::Producer::context(&producer).clone();
    Ok((producer, Tickets { reports, first: 0, outcomes: VecDeque::new(), taken: Vec::new() }))
}

/// A record for [`Tickets::send`], which sets its ticket as the delivery opaque.
pub type TicketRecord<'a> = BaseRecord<'a, [u8], [u8], usize>;

/// A [`TicketRecord`] to `topic`.
pub fn record_to(topic: &str) -> TicketRecord<'_> {
    BaseRecord::with_opaque_to(topic, 0)
}

/// The delivery callback's side: outcomes as librdkafka reports them (in order per partition, in any
/// order across partitions).
#[derive(Default)]
pub struct DeliveryReports {
    reported: Mutex<Vec<(u64, Outcome)>>,
    waker: AtomicWaker,
}

impl ClientContext for DeliveryReports {}

impl ProducerContext for DeliveryReports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: usize) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(error.clone()),
        };
        self.reported.lock().unwrap_or_else(PoisonError::into_inner).push((ticket as u64, outcome));
        self.waker.wake();
    }
}

/// The task's side: the tickets handed out and not yet taken, with the outcomes known so far.
pub struct Tickets {
    reports: Arc<DeliveryReports>,
    /// The oldest ticket not taken; `outcomes[i]` belongs to ticket `first + i`.
    first: u64,
    outcomes: VecDeque<Option<Outcome>>,
    /// Reports moved out of the shared list, kept to reuse its allocation.
    taken: Vec<(u64, Outcome)>,
}

impl Tickets {
    /// Send a record; its ticket is the order in which its outcome will be taken.
    #[allow(clippy::result_large_err)] // the record comes back to be sent again, as rdkafka's own send does
    pub fn send<'a>(&mut self, producer: &TicketProducer, record: TicketRecord<'a>) -> Result<u64, (KafkaError, TicketRecord<'a>)> {
        let ticket = self.first + self.outcomes.len() as u64;
        producer.send(record.delivery_opaque(ticket as usize))?;
        // No await between the send and this push, so the task sees the slot before it looks for reports.
        self.outcomes.push_back(None);
        Ok(ticket)
    }

    /// The outcome of the oldest ticket, `ticket`, if Kafka answered.
    pub fn take(&mut self, ticket: u64) -> Option<Outcome> {
        // Another order would hand this ticket another record's outcome: an offset stored too early.
        assert_eq!(ticket, self.first, "tickets are taken in the order they were handed out");
        if !matches!(self.outcomes.front(), Some(Some(_))) {
            self.collect();
        }
        match self.outcomes.front() {
            Some(Some(_)) => {
                self.first += 1;
                self.outcomes.pop_front().flatten()
            }
            _ => None,
        }
    }

    /// Wait for the outcome of the oldest ticket, `ticket`.
    pub fn poll_take(&mut self, ticket: u64, cx: &mut Context<'_>) -> Poll<Outcome> {
        if let Some(outcome) = self.take(ticket) {
            return Poll::Ready(outcome);
        }
        // Registered before looking again, so a report arriving in between wakes the task.
        self.reports.waker.register(cx.waker());
        match self.take(ticket) {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }

    /// Move the callback's reports into their slots.
    fn collect(&mut self) {
        {
            let mut reported = self.reports.reported.lock().unwrap_or_else(PoisonError::into_inner);
            if reported.is_empty() {
                return;
            }
            std::mem::swap(&mut *reported, &mut self.taken);
        }
        for (ticket, outcome) in self.taken.drain(..) {
            // A ticket below `first` cannot be reported (it was taken because it was), nor one past the
            // slots (its slot was pushed right after its send, before any collect).
            if let Some(slot) = ticket.checked_sub(self.first).and_then(|i| self.outcomes.get_mut(i as usize)) {
                *slot = Some(outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::producer::Producer;
    use std::time::Duration;

    fn report(tickets: &Tickets, ticket: u64, outcome: Outcome) {
        tickets.reports.reported.lock().unwrap().push((ticket, outcome));
        tickets.reports.waker.wake();
    }

    /// A producer that never connects: records stay queued, so reports come only from the test.
    fn unconnected() -> (TicketProducer, Tickets) {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", "127.0.0.1:1").set("message.timeout.ms", "600000");
        ticket_producer(&config).unwrap()
    }

    #[test]
    fn outcomes_are_taken_in_ticket_order_whatever_order_they_arrive_in() {
        let (producer, mut tickets) = unconnected();
        let sent: Vec<u64> =
            (0..3).map(|_| tickets.send(&producer, record_to("t").payload(&b"x"[..])).map_err(|(e, _)| e).unwrap()).collect();
        assert_eq!(sent, vec![0, 1, 2]);
        report(&tickets, 2, Ok((1, 20)));
        report(&tickets, 1, Ok((0, 11)));
        assert!(tickets.take(0).is_none(), "ticket 0 has no outcome yet");
        report(&tickets, 0, Err(KafkaError::Canceled));
        assert!(matches!(tickets.take(0), Some(Err(KafkaError::Canceled))));
        assert!(matches!(tickets.take(1), Some(Ok((0, 11)))));
        assert!(matches!(tickets.take(2), Some(Ok((1, 20)))));
        assert!(tickets.outcomes.is_empty());
        producer.purge(rdkafka::producer::PurgeConfig::default().queue());
    }

    #[test]
    fn a_waiting_task_is_woken_by_its_report() {
        let (producer, mut tickets) = unconnected();
        let ticket = tickets.send(&producer, record_to("t").payload(&b"x"[..])).map_err(|(e, _)| e).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let reports = tickets.reports.clone();
        let outcome = rt.block_on(async move {
            let reporter = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                reports.reported.lock().unwrap().push((ticket, Ok((3, 7))));
                reports.waker.wake();
            });
            let outcome = std::future::poll_fn(|cx| tickets.poll_take(ticket, cx)).await;
            reporter.await.unwrap();
            outcome
        });
        assert!(matches!(outcome, Ok((3, 7))));
        producer.purge(rdkafka::producer::PurgeConfig::default().queue());
    }

    #[test]
    fn a_real_delivery_failure_reaches_its_ticket() {
        // No broker and a short timeout: librdkafka reports the record as timed out through the callback.
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", "127.0.0.1:1").set("message.timeout.ms", "100");
        let (producer, mut tickets) = ticket_producer(&config).unwrap();
        let ticket = tickets.send(&producer, record_to("t").payload(&b"x"[..])).map_err(|(e, _)| e).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let outcome = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), std::future::poll_fn(|cx| tickets.poll_take(ticket, cx))).await.unwrap()
        });
        assert!(outcome.is_err(), "{outcome:?}");
    }
}
