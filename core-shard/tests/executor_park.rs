//! Stress check for the glommio executor park fix (third_party/glommio/PATCHES.md, patch 1).
//!
//! The race it guards against: a wake-up from another thread completes the eventfd read on
//! the latency ring just after the executor polled its rings, so the next scheduler turn starts
//! "preempted"; 0.9.0 then parked with the timer task runnable and nothing armed to wake it.
//! The race window is microseconds wide, so this test cannot hit it on demand; it drives many
//! thousands of foreign wake-ups against a 1 ms timer loop and fails if a timer sleep ever
//! stalls for seconds.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

#[test]
fn a_timer_task_woken_from_another_thread_keeps_ticking() {
    // The shape of the shard tick stall: one executor whose only timer is re-armed by the task
    // that the timer wakes, while another thread keeps waking it through a shared channel.
    let (tx, rx) = mpsc::channel();
    let (wake_tx, wake_rx) = glommio::channels::shared_channel::new_bounded::<u32>(1024);
    thread::spawn(move || {
        let ex = glommio::LocalExecutorBuilder::default()
            .io_memory(256 << 10)
            .spin_before_park(Duration::from_micros(50))
            .make()
            .expect("executor");
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
