// SPDX-License-Identifier: Apache-2.0
/*
 * Delivery without threads: the ring buffer's epoll fd is watched by a uv_poll_t on the Node
 * loop; each wake-up drains the ring into one Buffer and makes one call into JS, with the
 * batch's length: the Buffer is the same on every call (grown when a batch does not fit), so a
 * wake-up costs no allocation, no page faults of fresh memory and no GC work. With a wake-up
 * threshold (bpf/execwatch.bpf.c wakeup_bytes) the kernel stays quiet below it, and a uv_timer_t
 * drains the ring every flush interval instead: an exec storm then costs one call per batch. The
 * kernel wakes us for a record after a quiet spell (quiet_us), so a lone exec arrives at once and
 * the timer can stop once a drain finds nothing: an idle agent is not woken every interval.
 */
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "errors.h"
#include "tracer.h"

namespace execwatch
{

/* The delivery Buffer's first size: above the kernel's 32 KiB wake-up threshold. */
constexpr size_t kDeliveryMinBytes = 64 * 1024;
/*
 * The flush timer's period once a drain found nothing. The kernel wakes us for the next record
 * (bpf/execwatch.bpf.c quiet_us); this only bounds the delay of a record whose wake-up was
 * missed (its program was preempted between its clock read and its write to the ring).
 */
constexpr uint64_t kIdleFlushMs = 1000;

/* The closing handles outlive their Tracer (finalizers may run first at shutdown): own state. */
struct Poll {
	uv_poll_t handle;
	uv_timer_t timer;
	Tracer *owner;
	napi_async_cleanup_hook_handle finished = nullptr;
	/* Handles initialised and not yet closed: the last close callback frees this. */
	int open = 0;
	/* The flush timer is initialised: there is a wake-up threshold (tracer.cc). */
	bool timed = false;

	static void OnReadable(uv_poll_t *handle, int status, int)
	{
		Poll *poll = static_cast<Poll *>(handle->data);
		poll->owner->Deliver(status);
		poll->Arm(true);
	}
	static void OnTimer(uv_timer_t *timer)
	{
		Poll *poll = static_cast<Poll *>(timer->data);
		poll->Arm(poll->owner->Deliver(0) > 0);
	}
	/*
	 * While records come (a wake-up, or a drain that found some), the next drain is a flush
	 * interval after this one; after one that found none, kIdleFlushMs. From the loop's time
	 * now, not from the start of this turn of the loop: the kernel's quiet spell counts on a
	 * whole interval between the last drain that found records and one that finds none.
	 */
	void Arm(bool active)
	{
		// No timer, or delivery stopped during the call.
		if (!timed || !owner)
			return;
		uv_update_time(timer.loop);
		uv_timer_start(&timer, OnTimer, active ? owner->flush_interval_ms_ : kIdleFlushMs,
			       0);
	}
	static void OnClosed(uv_handle_t *handle)
	{
		Poll *poll = static_cast<Poll *>(handle->data);
		if (--poll->open > 0)
			return;
		if (poll->finished)
			napi_remove_async_cleanup_hook(poll->finished);
		delete poll;
	}
	void Close()
	{
		uv_poll_stop(&handle);
		if (timed) {
			uv_timer_stop(&timer);
			uv_close(reinterpret_cast<uv_handle_t *>(&timer), OnClosed);
		}
		uv_close(reinterpret_cast<uv_handle_t *>(&handle), OnClosed);
	}
};

Napi::Value Tracer::Start(const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env();
	ThrowIfClosed(env, "start");
	if (!info[0].IsFunction())
		throw CodedError(Napi::TypeError::New(env, "onBatch must be a function"),
				 "ERR_INVALID_ARG_TYPE");
	if (poll_)
		throw CodedError(Napi::Error::New(env, "start: delivery already started"),
				 "ERR_TRACER_STARTED");

	uv_loop_t *loop = nullptr;
	if (napi_get_uv_event_loop(env, &loop) != napi_ok)
		throw Napi::Error::New(env, "start: no event loop");
	ringbuf_ = ring_buffer__new(bpf_map__fd(events_), OnSample, this, nullptr);
	if (!ringbuf_)
		throw ErrnoError(env, "create ring buffer", errno);

	poll_ = new Poll{};
	poll_->owner = this;
	int err = uv_poll_init(loop, &poll_->handle, ring_buffer__epoll_fd(ringbuf_));
	if (err) {
		// Not initialised, so not known to the loop: no uv_close needed.
		delete poll_;
		poll_ = nullptr;
		StopDelivery(nullptr);
		throw ErrnoError(env, "watch ring buffer", err);
	}
	poll_->handle.data = poll_;
	poll_->open = 1;
	// Delivery must never be the reason a process stays up.
	uv_unref(reinterpret_cast<uv_handle_t *>(&poll_->handle));
	if (flush_interval_ms_ > 0) {
		// uv_timer_init cannot fail.
		uv_timer_init(loop, &poll_->timer);
		poll_->timer.data = poll_;
		poll_->open = 2;
		poll_->timed = true;
		uv_unref(reinterpret_cast<uv_handle_t *>(&poll_->timer));
	}
	on_batch_ = Napi::Persistent(info[0].As<Napi::Function>());
	async_context_ = std::make_unique<Napi::AsyncContext>(env, "execwatch:batch", Value());
	err = uv_poll_start(&poll_->handle, UV_READABLE, Poll::OnReadable);
	if (!err && flush_interval_ms_ > 0)
		err = uv_timer_start(&poll_->timer, Poll::OnTimer, flush_interval_ms_, 0);
	if (err) {
		StopDelivery(nullptr);
		ReleaseCallback();
		throw ErrnoError(env, "watch ring buffer", err);
	}
	return env.Undefined();
}

int Tracer::OnSample(void *ctx, void *data, size_t size)
{
	auto *self = static_cast<Tracer *>(ctx);
	const auto *bytes = static_cast<const uint8_t *>(data);
	if (self->overflow_.empty() && size <= self->out_capacity_ - self->out_length_) {
		std::memcpy(self->out_ + self->out_length_, bytes, size);
		self->out_length_ += size;
	} else {
		// No JS may be made here (inside libbpf): the Buffer grows once the ring is
		// drained.
		self->overflow_.insert(self->overflow_.end(), bytes, bytes + size);
	}
	return 0;
}

int Tracer::Deliver(int status)
{
	Napi::Env env(env_);
	Napi::HandleScope scope(env);
	try {
		/*
		 * Read afresh on every wake-up: a Buffer that JS detached (transferred) reads as
		 * empty and is replaced, so the addon never writes into memory it no longer owns.
		 */
		Napi::Buffer<uint8_t> buffer =
			delivery_.IsEmpty() ? Napi::Buffer<uint8_t>() : delivery_.Value();
		out_ = buffer.IsEmpty() ? nullptr : buffer.Data();
		out_capacity_ = out_ ? buffer.Length() : 0;
		out_length_ = 0;
		int consumed = status < 0 ? status : ring_buffer__consume(ringbuf_);
		out_ = nullptr;
		if (consumed < 0) {
			overflow_.clear();
			// Cannot happen with a healthy ring; say so loudly rather than stall
			// silently.
			StopDelivery(nullptr);
			napi_fatal_exception(env, ErrnoError(env,
							     status < 0 ? "poll ring buffer"
									: "consume ring buffer",
							     consumed)
							  .Value());
			return 0;
		}
		if (!overflow_.empty())
			buffer = GrowDelivery(env, buffer);
		if (out_length_ > 0)
			CallOnBatch(env, buffer);
		return consumed;
	} catch (const Napi::Error &) {
		/*
		 * Only N-API itself fails here: the loop can still turn while the environment shuts
		 * down and may no longer run JS. The batch has nowhere to go.
		 */
		overflow_.clear();
		return 0;
	}
}

Napi::Buffer<uint8_t> Tracer::GrowDelivery(Napi::Env env, Napi::Buffer<uint8_t> buffer)
{
	size_t length = out_length_ + overflow_.size();
	size_t capacity = std::max(kDeliveryMinBytes, out_capacity_);
	while (capacity < length)
		capacity *= 2;
	Napi::Buffer<uint8_t> larger = Napi::Buffer<uint8_t>::New(env, capacity);
	if (out_length_ > 0)
		std::memcpy(larger.Data(), buffer.Data(), out_length_);
	std::memcpy(larger.Data() + out_length_, overflow_.data(), overflow_.size());
	out_length_ = length;
	// A rare batch: its copy is not kept.
	std::vector<uint8_t>().swap(overflow_);
	delivery_ = Napi::Persistent(larger);
	return larger;
}

void Tracer::CallOnBatch(Napi::Env env, Napi::Buffer<uint8_t> buffer)
{
	// A local handle on the wrapper keeps it (and so `this`) alive through the call.
	Napi::Object self = Value();
	napi_value argv[] = {buffer, Napi::Number::New(env, static_cast<double>(out_length_))};
	napi_value result;
	delivering_ = true;
	napi_status status =
		napi_make_callback(env, *async_context_, self, on_batch_.Value(), 2, argv, &result);
	delivering_ = false;
	if (closed_)
		ReleaseCallback();
	bool pending = false;
	if (status != napi_ok && napi_is_exception_pending(env, &pending) == napi_ok && pending) {
		// The TS side promises not to throw; if it does, that is a bug the process must
		// hear of.
		napi_value error;
		napi_get_and_clear_last_exception(env, &error);
		callback_threw_ = true;
		napi_fatal_exception(env, error);
	}
}

void Tracer::StopDelivery(napi_async_cleanup_hook_handle finished)
{
	if (poll_) {
		// Stop before the ring (and its epoll fd) goes: the loop must not watch a dead fd.
		poll_->owner = nullptr;
		poll_->finished = finished;
		finished = nullptr;
		poll_->Close();
		poll_ = nullptr;
	}
	ring_buffer__free(ringbuf_);
	ringbuf_ = nullptr;
	// Nothing left to wait for: the environment may go on tearing down now.
	if (finished)
		napi_remove_async_cleanup_hook(finished);
}

void Tracer::ReleaseCallback()
{
	on_batch_.Reset();
	delivery_.Reset();
	async_context_.reset();
}

} // namespace execwatch
