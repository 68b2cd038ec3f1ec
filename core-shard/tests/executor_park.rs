//! Stress check for the glommio executor park fix (third_party/glommio/PATCHES.md, patch 1).
//!
//! The race it guards against: a wake-up from another thread completes the eventfd read on
//! the latency ring just after the executor polled its rings, so the next scheduler turn starts
//! "preempted"; 0.9.0 then parked with the timer task runnable and nothing armed to wake it.
//! The race window is microseconds wide, so this test cannot hit it on demand; it drives many
//! thousands of foreign wake-ups against a 1 ms timer loop and fails if a timer sleep ever
//! stalls for seconds. Upstream 0.9.0 passes it too (checked): it guards the patched path, it
//! does not reproduce the stall. The second test checks patch 3, the bound on every park.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// An executor configured as shards configure theirs (small `io_memory`, a short spin).
fn executor() -> glommio::LocalExecutor {
    glommio::LocalExecutorBuilder::default()
        .io_memory(256 << 10)
        .spin_before_park(Duration::from_micros(50))
        .make()
        .expect("executor")
}

#[test]
fn a_timer_task_woken_from_another_thread_keeps_ticking() {
    // The shape of the shard tick stall: one executor whose only timer is re-armed by the task
    // that the timer wakes, while another thread keeps waking it through a shared channel.
    let (tx, rx) = mpsc::channel();
    let (wake_tx, wake_rx) = glommio::channels::shared_channel::new_bounded::<u32>(1024);
    thread::spawn(move || {
        let ex = executor();
        let ticks = ex.run(async move {
            let rx = wake_rx.connect().await;
            let ticker = glommio::spawn_local(async move {
                let mut ticks = 0u32;
                let mut worst = Duration::ZERO;
                for _ in 0..2_000 {
                    let t = std::time::Instant::now();
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                    worst = worst.max(t.elapsed());
                    ticks += 1;
                }
                (ticks, worst)
            });
            let drain = glommio::spawn_local(async move { while rx.recv().await.is_some() {} });
            let ticks = ticker.await;
            drop(drain);
            ticks
        });
        let _ = tx.send(ticks);
    });
    let sender = thread::spawn(move || {
        glommio::LocalExecutorBuilder::default().io_memory(256 << 10).make().expect("executor").run(async move {
            let tx = wake_tx.connect().await;
            for i in 0..200_000u32 {
                if tx.send(i).await.is_err() {
                    break;
                }
                if i % 64 == 0 {
                    glommio::timer::sleep(Duration::from_micros(100)).await;
                }
            }
        })
    });
    let (ticks, worst) =
        rx.recv_timeout(Duration::from_secs(60)).expect("2,000 timer ticks of 1 ms did not finish in 60 s");
    assert_eq!(ticks, 2_000);
    // Scheduling noise on this VM gives tens of ms; a lost wake-up gives seconds or never.
    assert!(worst < Duration::from_secs(2), "a 1 ms timer sleep took {worst:?}");
    drop(sender);
}

/// The thread's voluntary context switches so far (`/proc/thread-self/status`).
fn voluntary_switches() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("read /proc/thread-self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("voluntary_ctxt_switches in /proc/thread-self/status")
}

#[test]
fn an_idle_executor_wakes_by_itself_within_the_park_bound() {
    // Patch 3: a parked executor looks at its rings, timers and channels again after at most
    // `glommio::MAX_PARK`, so a wake-up that never arrives cannot park it for longer. The
    // bound must stay well below a raft tick (100 ms in production).
    assert!(glommio::MAX_PARK <= Duration::from_millis(100), "park bound {:?}", glommio::MAX_PARK);
    // Idle for 1 s behind one 1 s timer, the executor thread must therefore wake about
    // 1 s / MAX_PARK times; an unbounded park sleeps through it in a few switches (3 seen).
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let ex = executor();
        let switches = ex.run(async move {
            let before = voluntary_switches();
            glommio::timer::sleep(Duration::from_secs(1)).await;
            voluntary_switches() - before
        });
        let _ = tx.send(switches);
    });
    let switches = rx.recv_timeout(Duration::from_secs(30)).expect("a 1 s timer did not fire within 30 s");
    let expected = (Duration::from_secs(1).as_millis() / glommio::MAX_PARK.as_millis()) as u64;
    assert!(
        switches >= expected / 2,
        "an idle executor woke {switches} times in 1 s; a park bounded by {:?} wakes about {expected} times",
        glommio::MAX_PARK
    );
}
