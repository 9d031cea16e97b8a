// Command prometheus serves a guard's metrics to Prometheus through the
// OpenTelemetry Prometheus exporter: it runs a few deliveries through a
// guard that revotel instruments, then serves /metrics, with a delivery
// more every second so that the counters move.
//
//	go run ./example/prometheus -addr localhost:9464
//	curl -s localhost:9464/metrics | grep '^revguard_'
//
// With -selftest it scrapes its own /metrics once, prints the revguard
// series but the histograms' buckets, and exits.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/revguard/revguard"
	"github.com/revguard/revguard/backends/memstore"
	"github.com/revguard/revguard/contrib/revotel"
)

func main() {
	addr := flag.String("addr", "localhost:9464", "address to serve /metrics on")
	selftest := flag.Bool("selftest", false, "scrape /metrics once, print the revguard series and exit")
	flag.Parse()
	if err := run(*addr, *selftest, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// OrderShipped is the example's event.
type OrderShipped struct {
	Order    string
	Revision uint64
}

func extract(e OrderShipped) (string, revguard.Revision, error) {
	return e.Order, revguard.Revision(e.Revision), nil
}

var errCarrierDown = errors.New("carrier API down")

func ship(_ context.Context, e OrderShipped) error {
	if e.Order == "order:3" {
		return errCarrierDown
	}
	return nil
}

// setup makes the pipeline: a Prometheus registry, the exporter that fills
// it from OpenTelemetry's metrics, and a guard instrumented through it. It
// returns the /metrics handler and the guard.
func setup() (http.Handler, *revguard.Guard[OrderShipped], error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, err
	}
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	g := revguard.New(memstore.New(), extract, revguard.WithNamespace("shipping"), revguard.WithDropCache(1000),
		revotel.Instrument(revotel.WithMeterProvider(meters)))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux, g, nil
}

// deliveries are what an at-least-once transport hands over: a redelivery
// and an event out of order, which the drop cache answers, a handler that
// fails and a bad event among them.
var deliveries = []OrderShipped{
	{"order:1", 1}, {"order:2", 1}, {"order:1", 2}, {"order:1", 2}, {"order:1", 1}, {"order:3", 1}, {"", 1},
}

func run(addr string, selftest bool, out io.Writer) error {
	h, g, err := setup()
	if err != nil {
		return err
	}
	ctx := context.Background()
	for _, e := range deliveries {
		_, _ = g.Handle(ctx, e, ship)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	if !selftest {
		go deliverEverySecond(ctx, g)
		fmt.Fprintf(out, "serving http://%s/metrics\n", ln.Addr())
		return srv.Serve(ln)
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()
	return scrape("http://"+ln.Addr().String()+"/metrics", out)
}

func deliverEverySecond(ctx context.Context, g *revguard.Guard[OrderShipped]) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for rev := uint64(3); ; rev++ {
		<-t.C
		_, _ = g.Handle(ctx, OrderShipped{"order:1", rev}, ship)
	}
}

// scrape prints the revguard series of the page at url, but the buckets.
func scrape(url string, out io.Writer) error {
	resp, err := http.Get(url) //nolint:gosec // G107: the URL of the example's own listener
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "revguard_") && !strings.Contains(line, "_bucket{") {
			fmt.Fprintln(out, line)
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("GET %s: no revguard series", url)
	}
	return nil
}
