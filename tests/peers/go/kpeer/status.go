package main

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// The types below mirror metav1.Status field for field, with the same JSON tags, so
// that encoding/json produces the very bytes a kubelet produces
// (staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go).

type typeMeta struct {
	Kind       string `json:"kind,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
}

// listMeta is a struct, so encoding/json always emits it, as "metadata":{}.
type listMeta struct {
	SelfLink           string `json:"selfLink,omitempty"`
	ResourceVersion    string `json:"resourceVersion,omitempty"`
	Continue           string `json:"continue,omitempty"`
	RemainingItemCount *int64 `json:"remainingItemCount,omitempty"`
}

type statusCause struct {
	Type    string `json:"reason,omitempty"` // sic: a cause's type is serialised as "reason"
	Message string `json:"message,omitempty"`
	Field   string `json:"field,omitempty"`
}

type statusDetails struct {
	Name              string        `json:"name,omitempty"`
	Group             string        `json:"group,omitempty"`
	Kind              string        `json:"kind,omitempty"`
	UID               string        `json:"uid,omitempty"`
	Causes            []statusCause `json:"causes,omitempty"`
	RetryAfterSeconds int32         `json:"retryAfterSeconds,omitempty"`
}

type status struct {
	typeMeta `json:",inline"`
	Metadata listMeta       `json:"metadata,omitempty"`
	Status   string         `json:"status,omitempty"`
	Message  string         `json:"message,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Details  *statusDetails `json:"details,omitempty"`
	Code     int32          `json:"code,omitempty"`
}

// exitError is a command that ran and exited non-zero; Error() is containerd's text
// (internal/cri/server/streaming.go in containerd).
type exitError struct {
	argv []string
	code int
}

func (e *exitError) Error() string {
	return fmt.Sprintf("error executing command %v, exit code %d", e.argv, e.code)
}

// execStatus is what ServeExec writes for the command's result
// (kubelet cri/streaming/remotecommand/exec.go).
func execStatus(err error) status {
	if err == nil {
		return status{Status: "Success"}
	}
	if exitErr, ok := err.(*exitError); ok {
		return status{
			Status:  "Failure",
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exitErr),
			Reason:  "NonZeroExitCode",
			Details: &statusDetails{Causes: []statusCause{
				{Type: "ExitCode", Message: fmt.Sprintf("%d", exitErr.code)},
			}},
		}
	}
	return internalError(fmt.Errorf("error executing command in container: %v", err))
}

// internalError is apierrors.NewInternalError (apimachinery/pkg/api/errors/errors.go).
func internalError(err error) status {
	return status{
		Status:  "Failure",
		Message: fmt.Sprintf("Internal error occurred: %v", err),
		Reason:  "InternalError",
		Details: &statusDetails{Causes: []statusCause{{Message: err.Error()}}},
		Code:    http.StatusInternalServerError,
	}
}

// mustJSON marshals a status; it cannot fail for these types.
func mustJSON(s status) []byte {
	data, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return data
}

// reasonForCode is the metav1.StatusReason an API server uses for an HTTP status.
func reasonForCode(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "BadRequest"
	case http.StatusUnauthorized:
		return "Unauthorized"
	case http.StatusForbidden:
		return "Forbidden"
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusMethodNotAllowed:
		return "MethodNotAllowed"
	case http.StatusConflict:
		return "Conflict"
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusInternalServerError:
		return "InternalError"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusGatewayTimeout:
		return "Timeout"
	}
	return "Unknown"
}

// writeStatusResponse answers a plain HTTP request with a Failure Status document.
func writeStatusResponse(w http.ResponseWriter, code int, message string) {
	body := mustJSON(status{
		typeMeta: typeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   "Failure",
		Message:  message,
		Reason:   reasonForCode(code),
		Code:     int32(code),
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprintf("%d", len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
