package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The "public" server: an HTTP server on publicAddr, an internet address (RFC 5737 TEST-NET-3)
// added to lo inside the scenario's network namespace (lo, not a dummy interface: kernels
// without the dummy driver, such as the project's test VM, have lo in every namespace). A
// connect names the address, so the rules' public_endpoint() takes it for the internet; the
// namespace has no other interface and no route, so nothing leaves the machine. GET /<name> serves the scenario's public_files; POST and PUT bodies are taken
// (any path) and logged, so the analysis can tell that an exfiltration really happened.

// publicLog is the server's log in the scenario folder: one JSON line per request.
const publicLog = "public_requests.jsonl"

// maxLoggedBody is how much of a POST or PUT body the log keeps (the fake secrets are small).
const maxLoggedBody = 64 << 10

// PublicRequest is one line of publicLog.
type PublicRequest struct {
	Time   time.Time `json:"ts"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Remote string    `json:"remote"`
	Status int       `json:"status"`
	Bytes  int64     `json:"bytes"`          // body bytes received
	Body   string    `json:"body,omitempty"` // the first maxLoggedBody of a POST or PUT body
}

// publicHandler serves files and takes uploads, logging each request to log.
type publicHandler struct {
	files map[string]string
	mu    sync.Mutex
	log   io.Writer
}

func (h *publicHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := PublicRequest{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Remote: r.RemoteAddr, Bytes: int64(len(body))}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		content, ok := h.files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			req.Status = http.StatusNotFound
			http.NotFound(w, r)
			break
		}
		req.Status = http.StatusOK
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, content)
	case http.MethodPost, http.MethodPut:
		req.Status = http.StatusOK
		if len(body) > maxLoggedBody {
			body = body[:maxLoggedBody]
		}
		req.Body = string(body)
		fmt.Fprintf(w, "received %d bytes\n", req.Bytes)
	default:
		req.Status = http.StatusMethodNotAllowed
		w.WriteHeader(req.Status)
	}
	b, _ := json.Marshal(req)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log.Write(append(b, '\n'))
}

// startPublic adds publicIP to lo and serves the scenario's public files
// on publicAddr, logging to dir/publicLog. It runs inside the scenario's network namespace.
func startPublic(sc Scenario, dir string) (stop func(), err error) {
	if out, err := exec.Command("ip", "addr", "add", publicIP+"/32", "dev", "lo").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip addr add %s/32 dev lo: %v: %s", publicIP, err, out)
	}
	f, err := os.Create(filepath.Join(dir, publicLog))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", publicAddr)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("public server: %w", err)
	}
	srv := &http.Server{Handler: &publicHandler{files: sc.PublicFiles, log: f}}
	go srv.Serve(ln)
	return func() { srv.Close(); f.Close() }, nil
}

// checkPublic reads the public server's log into res: requests, bytes received and whether a
// POST or PUT body held the scenario's expect_upload (an error when it did not).
func checkPublic(res *ScenarioResult, sc Scenario, path string) {
	f, err := os.Open(path)
	if err != nil {
		res.Errors = append(res.Errors, "public server: "+err.Error())
		return
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 4<<20)
	for s.Scan() {
		var r PublicRequest
		if json.Unmarshal(s.Bytes(), &r) != nil {
			res.Errors = append(res.Errors, "public server: bad log line")
			continue
		}
		res.PublicRequests++
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			res.PublicBytesIn += r.Bytes
			if sc.ExpectUpload != "" && strings.Contains(r.Body, sc.ExpectUpload) {
				res.Uploaded = true
			}
		}
	}
	if sc.ExpectUpload != "" && !res.Uploaded {
		res.Errors = append(res.Errors, fmt.Sprintf("no POST or PUT body the public server received holds %q: the exfiltration did not happen", sc.ExpectUpload))
	}
}

// seedHome creates the scenario's home_files in home.
func seedHome(home string, files map[string]HomeFile) error {
	for name, h := range files {
		p := filepath.Join(home, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		mode, err := h.perm()
		if err != nil {
			return fmt.Errorf("home_files %s: %w", name, err)
		}
		content := []byte(h.Content)
		if h.CopyOf != "" {
			if content, err = os.ReadFile(h.CopyOf); err != nil {
				return fmt.Errorf("home_files %s: %w", name, err)
			}
		}
		if err := os.WriteFile(p, content, mode); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is masked by the umask
			return err
		}
	}
	return nil
}
