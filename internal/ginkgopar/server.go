// Package ginkgopar is the server side of Ginkgo's parallel protocol, so
// that `scxcheck run --procs N` can run the suites in N processes the way
// the ginkgo CLI does: each process is a Ginkgo client (SuiteConfig's
// ParallelProcess, ParallelTotal, ParallelHost) that takes specs one by one
// from the server's counter, shares the data of SynchronizedBeforeSuite,
// waits for the others in SynchronizedAfterSuite, and sends its spec reports
// here, where one reporter prints them as a serial run would.
//
// Ginkgo's own server lives in github.com/onsi/ginkgo/v2/internal/
// parallel_support, which Go does not let other modules import. This is
// that server's HTTP variant and handler, from Ginkgo v2.34.0, reduced to
// what a Ginkgo client uses. The clients speak HTTP when their environment
// has GINKGO_PARALLEL_PROTOCOL=HTTP (see ClientEnv).
//
// Ginkgo's copyright and MIT licence, under which this code is used, are in
// NOTICE beside this file. TestGinkgoVersion fails when go.mod moves to
// another Ginkgo: compare the new parallel_support with this copy, then
// update CopiedFrom.
package ginkgopar

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

// CopiedFrom is the Ginkgo version this server was copied from.
const CopiedFrom = "v2.34.0"

// ClientEnv is the environment variable a Ginkgo client process needs to
// talk to this server.
const ClientEnv = "GINKGO_PARALLEL_PROTOCOL=HTTP"

// beforeSuiteState is what process 1's SynchronizedBeforeSuite hands the
// others (Ginkgo's parallel_support.BeforeSuiteState, same JSON).
type beforeSuiteState struct {
	Data  []byte
	State types.SpecState
}

// The answers a client polls through: too early (retry), gone (process 1
// died), failed.
var (
	errEarly  = errors.New("early")
	errGone   = errors.New("gone")
	errFailed = errors.New("failed")
)

// Server serves N Ginkgo processes and reports their specs through one
// reporter.
type Server struct {
	listener net.Listener
	total    int
	reporter reporters.Reporter
	output   io.Writer
	done     chan struct{}

	mu                     sync.Mutex
	alive                  []func() bool
	beforeSuite            beforeSuiteState
	reportBeforeSuiteState types.SpecState
	counter                int
	shouldAbort            bool
	numBegins, numEnds     int
	procDidEnd             []bool
	aggregated             types.Report
	held                   []types.SpecReport
}

// NewServer listens on a local port for total processes. Their spec
// reports go to reporter; what they write with GinkgoWriter in parallel
// mode, to output.
func NewServer(total int, reporter reporters.Reporter, output io.Writer) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &Server{
		listener:    l,
		total:       total,
		reporter:    reporter,
		output:      output,
		done:        make(chan struct{}),
		alive:       make([]func() bool, total),
		procDidEnd:  make([]bool, total),
		beforeSuite: beforeSuiteState{State: types.SpecStateInvalid},
	}, nil
}

// Address is the value for the processes' SuiteConfig.ParallelHost.
func (s *Server) Address() string { return "http://" + s.listener.Addr().String() }

// Done is closed when every process has reported the end of its suite.
func (s *Server) Done() <-chan struct{} { return s.done }

// RegisterAlive tells the server how to know whether process proc (1-based)
// still runs, so that the others do not wait for a process that died.
func (s *Server) RegisterAlive(proc int, alive func() bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alive[proc-1] = alive
}

// Close stops listening.
func (s *Server) Close() { s.listener.Close() }

// Start serves in the background.
func (s *Server) Start() {
	mux := http.NewServeMux()
	get := func(path string, answer func() (any, error)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			v, err := answer()
			switch err {
			case nil:
				if v != nil {
					_ = json.NewEncoder(w).Encode(v)
				}
			case errEarly:
				w.WriteHeader(http.StatusTooEarly)
			case errGone:
				w.WriteHeader(http.StatusGone)
			case errFailed:
				w.WriteHeader(http.StatusFailedDependency)
			default:
				w.WriteHeader(http.StatusInternalServerError)
			}
		})
	}

	// Streaming endpoints.
	post(mux, "/suite-will-begin", s.suiteWillBegin)
	post(mux, "/did-run", s.didRun)
	post(mux, "/suite-did-end", s.suiteDidEnd)
	mux.HandleFunc("/emit-output", func(w http.ResponseWriter, r *http.Request) {
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		if err == nil {
			_, err = s.output.Write(b)
		}
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	post(mux, "/progress-report", func(rep types.ProgressReport) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.reporter.EmitProgressReport(rep)
	})

	// Synchronization endpoints.
	post(mux, "/report-before-suite-completed", func(state types.SpecState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.reportBeforeSuiteState = state
	})
	get("/report-before-suite-state", func() (any, error) {
		proc1Alive := s.procIsAlive(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.reportBeforeSuiteState == types.SpecStateInvalid {
			return nil, earlyOrGone(proc1Alive)
		}
		return s.reportBeforeSuiteState, nil
	})
	post(mux, "/before-suite-completed", func(state beforeSuiteState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.beforeSuite = state
	})
	get("/before-suite-state", func() (any, error) {
		proc1Alive := s.procIsAlive(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.beforeSuite.State == types.SpecStateInvalid {
			return nil, earlyOrGone(proc1Alive)
		}
		return s.beforeSuite, nil
	})
	get("/have-nonprimary-procs-finished", func() (any, error) {
		if !s.nonprimaryProcsFinished() {
			return nil, errEarly
		}
		return nil, nil
	})
	get("/aggregated-nonprimary-procs-report", func() (any, error) {
		if !s.nonprimaryProcsFinished() {
			return nil, errEarly
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.numEnds != s.total-1 {
			return nil, errGone
		}
		return s.aggregated, nil
	})
	get("/counter", func() (any, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := s.counter
		s.counter++
		return struct{ Index int }{n}, nil
	})
	mux.HandleFunc("/up", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/abort", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Method != http.MethodGet {
			s.shouldAbort = true
			return
		}
		if s.shouldAbort {
			w.WriteHeader(http.StatusGone)
		}
	})
	go (&http.Server{Handler: mux}).Serve(s.listener)
}

// post handles a client's POST of a JSON value of type T.
func post[T any](mux *http.ServeMux, path string, handle func(T)) {
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		defer r.Body.Close()
		var v T
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		handle(v)
	})
}

func earlyOrGone(proc1Alive bool) error {
	if proc1Alive {
		return errEarly
	}
	return errGone
}

// suiteWillBegin reports the suite's start once every process has begun,
// with the specs that ended before that.
func (s *Server) suiteWillBegin(rep types.Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.numBegins++
	if s.numBegins == s.total {
		s.reporter.SuiteWillBegin(rep)
		for _, r := range s.held {
			s.reporter.WillRun(r)
			s.reporter.DidRun(r)
		}
		s.held = nil
	}
}

func (s *Server) didRun(rep types.SpecReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.numBegins < s.total {
		s.held = append(s.held, rep)
		return
	}
	s.reporter.WillRun(rep)
	s.reporter.DidRun(rep)
}

func (s *Server) suiteDidEnd(rep types.Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.numEnds++
	if p := rep.SuiteConfig.ParallelProcess; p >= 1 && p <= s.total {
		s.procDidEnd[p-1] = true
	}
	if s.numEnds == 1 {
		s.aggregated = rep
	} else {
		s.aggregated = s.aggregated.Add(rep)
	}
	if s.numEnds == s.total {
		s.reporter.SuiteDidEnd(s.aggregated)
		close(s.done)
	}
}

// Aggregated is the merged report of the processes that ended their suite.
func (s *Server) Aggregated() types.Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.aggregated
}

func (s *Server) procIsAlive(proc int) bool {
	s.mu.Lock()
	alive := s.alive[proc-1]
	s.mu.Unlock()
	return alive == nil || alive()
}

func (s *Server) nonprimaryProcsFinished() bool {
	for p := 2; p <= s.total; p++ {
		s.mu.Lock()
		ended := s.procDidEnd[p-1]
		s.mu.Unlock()
		if !ended && s.procIsAlive(p) {
			return false
		}
	}
	return true
}
