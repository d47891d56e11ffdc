package main

// The few API-server documents kubectl reads before it execs or port-forwards
// (protocol-notes §5.3): discovery of core v1 and a Running pod. With them kubectl can
// point straight at "kpeer serve" (no front in between).

import (
	"encoding/json"
	"net/http"
	"strings"
)

var discovery = map[string]interface{}{
	"/api": map[string]interface{}{
		"kind": "APIVersions", "versions": []string{"v1"},
		"serverAddressByClientCIDRs": []interface{}{
			map[string]string{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}},
	},
	"/apis": map[string]interface{}{"kind": "APIGroupList", "apiVersion": "v1", "groups": []interface{}{}},
	"/api/v1": map[string]interface{}{
		"kind": "APIResourceList", "groupVersion": "v1", "resources": []interface{}{
			map[string]interface{}{"name": "pods", "singularName": "pod", "namespaced": true,
				"kind": "Pod", "verbs": []string{"get", "list"}, "shortNames": []string{"po"}},
			map[string]interface{}{"name": "pods/exec", "singularName": "", "namespaced": true,
				"kind": "PodExecOptions", "verbs": []string{"create", "get"}},
			map[string]interface{}{"name": "pods/portforward", "singularName": "", "namespaced": true,
				"kind": "PodPortForwardOptions", "verbs": []string{"create", "get"}},
		},
	},
}

// serveAPI answers a plain GET of discovery or of a pod; false when path is neither.
func serveAPI(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet || r.Header.Get("Upgrade") != "" {
		return false
	}
	var document interface{}
	if found, ok := discovery[r.URL.Path]; ok {
		document = found
	} else {
		// /api/v1/namespaces/NS/pods/NAME
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(parts) != 6 || parts[0] != "api" || parts[1] != "v1" || parts[2] != "namespaces" || parts[4] != "pods" {
			return false
		}
		document = runningPod(parts[3], parts[5])
	}
	body, err := json.Marshal(document)
	if err != nil {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return true
}

func runningPod(namespace, name string) map[string]interface{} {
	return map[string]interface{}{
		"kind": "Pod", "apiVersion": "v1",
		"metadata": map[string]string{"name": name, "namespace": namespace, "uid": "0000-kpeer"},
		"spec":     map[string]interface{}{"containers": []interface{}{map[string]string{"name": "main", "image": "kpeer"}}},
		"status": map[string]interface{}{"phase": "Running", "containerStatuses": []interface{}{
			map[string]interface{}{"name": "main", "ready": true, "restartCount": 0, "image": "kpeer",
				"imageID": "", "state": map[string]interface{}{"running": map[string]string{}}}}},
	}
}
