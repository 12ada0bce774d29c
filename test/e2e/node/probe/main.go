// Command probe runs in the real-node suite's Pod and reports what the Pod
// sees from inside, over plain HTTP to the test on the host: whether the
// in-cluster API (rest.InClusterConfig: the kubernetes Service's address, the
// mounted kube-root-ca.crt and token) answers and who it says the Pod is, and
// the content of its projected token and Secret volume. With -cat it prints
// a file, for an exec into the container.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// InClusterAPI is /inclusterapi's answer.
type InClusterAPI struct {
	Host     string `json:"host"`
	Username string `json:"username,omitempty"`
	Error    string `json:"error,omitempty"`
}

func main() {
	listen := flag.String("listen", ":8080", "address to serve on")
	tokenFile := flag.String("token-file", "", "the projected token to serve on /token")
	secretFile := flag.String("secret-file", "", "the Secret volume's file to serve on /secret")
	cat := flag.String("cat", "", "print this file and exit (what the suite execs in the container)")
	flag.Parse()
	if *cat != "" {
		b, err := os.ReadFile(*cat)
		if err != nil {
			log.Fatal(err)
		}
		_, _ = os.Stdout.Write(b)
		return
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/inclusterapi", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(inClusterAPI(r.Context()))
	})
	for path, file := range map[string]string{"/token": *tokenFile, "/secret": *secretFile} {
		mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			b, err := os.ReadFile(file)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_, _ = w.Write(b)
		})
	}
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("probe listening on %s", *listen)
	log.Fatal(srv.ListenAndServe())
}

// inClusterAPI asks the API server, as a Pod's client would find it, who
// this Pod's ServiceAccount token says it is.
func inClusterAPI(ctx context.Context) InClusterAPI {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return InClusterAPI{Error: err.Error()}
	}
	out := InClusterAPI{Host: cfg.Host}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Username = review.Status.UserInfo.Username
	return out
}
