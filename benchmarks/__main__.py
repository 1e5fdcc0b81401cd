"""Run every benchmark: ``python -m benchmarks`` (``make bench``)."""

from benchmarks import (
    bench_alerting,
    bench_detection,
    bench_kafka,
    bench_pipeline,
    bench_startup,
    bench_stats,
)

if __name__ == "__main__":
    bench_stats.main()
    bench_pipeline.main()
    bench_alerting.main()
    bench_startup.main([])
    bench_kafka.main([])
    bench_detection.main([])
