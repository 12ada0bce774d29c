// Package scrapeconfig describes how Prometheus scrapes one protected workload through its proxy, and derives from that one description a ServiceMonitor, a PodMonitor or a plain scrape_config.
package scrapeconfig
