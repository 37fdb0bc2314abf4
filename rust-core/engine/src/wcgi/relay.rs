//! One request relayed to a long-lived instance: a new yamux stream carrying it as
//! HTTP/1.1, bounded by the request's deadline, its client and the instance's life.

use std::time::{Duration, Instant};

use futures::AsyncReadExt;

use super::instance::Instance;
use super::{http1, session};
use crate::failure::{Failure, FailureKind};
use crate::host::Host;
use crate::request::RunSpec;

/// How often a waiting request checks whether its client is still there.
const CANCEL_CHECK: Duration = Duration::from_millis(20);

/// Relays one request over a new stream of `instance`'s session.
pub(super) fn relay(instance: &Instance, spec: &RunSpec, host: &dyn Host) -> Result<(), Failure> {
    // The server bounds its body reads and response writes by the same deadline, so a
    // slow client cannot hold this thread inside them past it.
    host.set_deadline(spec.limits.timeout);
    let head_only = spec.http.method.eq_ignore_ascii_case("HEAD");
    let exchange = async {
        let stream = instance
            .session
            .open()
            .await
            .map_err(|e| Failure::new(FailureKind::InstanceGone, e))?;
        let (rd, wr) = stream.split();
        let send = std::pin::pin!(http1::send_request(wr, spec, host));
        let relay = std::pin::pin!(http1::relay_response(rd, head_only, host));
        // Only the answer counts: a guest may answer (403, say) without reading the whole
        // body, and its answer must reach the client while the upload is still stalled on
        // the guest's window. What is left of the body is then the server's to drain or
        // close; a failed send (the client went away mid-body) shows in the answer too.
        match futures::future::select(send, relay).await {
            futures::future::Either::Left((_, relay)) => relay.await,
            futures::future::Either::Right((relayed, _)) => relayed,
        }
    };
    let deadline = Instant::now() + spec.limits.timeout;
    let cancelled = async {
        loop {
            tokio::time::sleep(CANCEL_CHECK).await;
            // Past the deadline the request's context ends too: the timeout branch answers.
            if host.cancelled() && Instant::now() < deadline {
                return;
            }
        }
    };
    let ended = instance.session.wait_ended();
    session::runtime().block_on(async {
        tokio::select! {
            result = tokio::time::timeout(spec.limits.timeout, exchange) => result.unwrap_or_else(|_| {
                Err(Failure::new(FailureKind::Timeout, "guest ran past its time limit"))
            }),
            () = cancelled => Err(Failure::new(FailureKind::ClientGone, "client went away")),
            () = ended => Err(Failure::new(FailureKind::InstanceGone, "the WCGI instance ended")),
        }
    })
}
