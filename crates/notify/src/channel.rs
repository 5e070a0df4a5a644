//! One attempt on a subscription's channel, whatever it is: a signed webhook POST
//! (`attempt`), or an email through the operator's SMTP server (`email`) for a subscription
//! of format `email`. Retrying, logging and recording stay the callers' (`send`, the
//! dead-letter resend, the test event), the same for both.

use borderwatch_model::{PayloadFormat, Subscription};

use crate::attempt::{Attempt, post};
use crate::ctx::Ctx;
use crate::email;
use crate::notice::Notice;

/// Sends `notice` to `sub` once; `body` is what a webhook is POSTed (the rendered notice).
pub(crate) async fn attempt(
    ctx: &Ctx,
    sub: &Subscription,
    notice: &Notice,
    body: &[u8],
) -> Attempt {
    if sub.format == PayloadFormat::Email {
        email::send(
            ctx.mailer.as_deref(),
            sub,
            notice,
            ctx.cfg.public_url.as_deref(),
        )
        .await
    } else {
        post(ctx, sub, notice.id(), body).await
    }
}
