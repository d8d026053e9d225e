{{/* Names and labels. */}}
{{- define "signet.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "signet.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "signet.labels" -}}
{{ include "signet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "signet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Where things are inside the pod. */}}
{{- define "signet.keysDir" -}}/var/lib/signet{{- end -}}
{{- define "signet.passwordFile" -}}
{{- if .Values.keys.passwordSecret.name -}}/var/run/signet/key-password/password{{- else -}}/var/lib/signet/secrets/key-password{{- end -}}
{{- end -}}
{{- define "signet.pinFile" -}}/var/run/signet/pin/pin{{- end -}}

{{- define "signet.publicURL" -}}
{{- required "publicURL is required: how clients reach the instance, e.g. https://signet.example.com" .Values.publicURL | trimSuffix "/" -}}
{{- end -}}

{{- define "signet.hostname" -}}
{{- default (urlParse (include "signet.publicURL" .)).hostname .Values.hostname -}}
{{- end -}}

{{/*
The values that cannot work, refused at render time with the reason
(helm install / template / lint fail before anything reaches the cluster).
*/}}
{{- define "signet.validate" -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- if eq .Values.keys.source "volume" -}}
{{- fail "replicaCount > 1 needs keys.source secret or pkcs11: a key volume made by admin init belongs to one pod" -}}
{{- end -}}
{{- if .Values.tls.secretName -}}
{{- fail "replicaCount > 1 needs TLS terminated at the Ingress (leave tls.secretName empty): replicas forward requests to each other by pod IP, which the server's certificate does not name" -}}
{{- end -}}
{{- end -}}
{{- if not .Values.database.existingSecret -}}
{{- fail "database.existingSecret is required: a Secret whose database.secretKey holds the PostgreSQL URL" -}}
{{- end -}}
{{- if and .Values.tls.secretName (hasPrefix "http://" .Values.publicURL) -}}
{{- fail "tls.secretName makes the server speak HTTPS only: publicURL must start with https://" -}}
{{- end -}}
{{- $k := .Values.keys -}}
{{- if not (has $k.source (list "volume" "secret" "pkcs11")) -}}
{{- fail (printf "keys.source %q: want volume, secret or pkcs11" $k.source) -}}
{{- end -}}
{{- if and (eq $k.source "secret") (or (not $k.existingSecret) (not $k.passwordSecret.name)) -}}
{{- fail "keys.source secret needs keys.existingSecret (the key files and chains) and keys.passwordSecret.name (their password)" -}}
{{- end -}}
{{- if eq $k.source "pkcs11" -}}
{{- if or (not $k.pkcs11.pinSecret.name) (not $k.pkcs11.chainsSecret) -}}
{{- fail "keys.source pkcs11 needs keys.pkcs11.pinSecret.name (the token PIN) and keys.pkcs11.chainsSecret (ca-chain.pem, tsa-chain.pem)" -}}
{{- end -}}
{{- if or (not (hasPrefix "pkcs11:" $k.pkcs11.token)) (not (contains "module-path=" $k.pkcs11.token)) (contains "object=" $k.pkcs11.token) -}}
{{- fail "keys.pkcs11.token must be a pkcs11: URI naming the token and its module-path=, without object=" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The key URI of one of admin init's keys (log, ct, ca, tsa, tuf-*). */}}
{{- define "signet.keyURI" -}}
{{- $ := index . 0 -}}{{- $name := index . 1 -}}
{{- if eq $.Values.keys.source "pkcs11" -}}
{{- $parts := splitn "?" 2 $.Values.keys.pkcs11.token -}}
{{- printf "%s;object=signet-%s?%s&pin-source=file:%s" $parts._0 $name $parts._1 (include "signet.pinFile" $) -}}
{{- else -}}
{{- printf "file://%s/%s.pem?password-file=%s" (include "signet.keysDir" $) $name (include "signet.passwordFile" $) -}}
{{- end -}}
{{- end -}}

{{/* signet.yaml: the chart's settings, then .Values.config over them. */}}
{{- define "signet.config" -}}
{{- $dir := include "signet.keysDir" . -}}
{{- $tuf := dict
  "targets_signer" (include "signet.keyURI" (list . "tuf-targets"))
  "snapshot_signer" (include "signet.keyURI" (list . "tuf-snapshot"))
  "timestamp_signer" (include "signet.keyURI" (list . "tuf-timestamp")) -}}
{{- if .Values.keys.tufRootSigner -}}
{{- $_ := set $tuf "root_signer" (include "signet.keyURI" (list . "tuf-root")) -}}
{{- end -}}
{{- $cfg := dict
  "listen" "0.0.0.0:8080"
  "hostname" (include "signet.hostname" .)
  "public_url" (include "signet.publicURL" .)
  "metrics" (dict "listen" "0.0.0.0:9090")
  "log" (dict "signer" (include "signet.keyURI" (list . "log")))
  "ct" (dict "signer" (include "signet.keyURI" (list . "ct")))
  "ca" (dict "signer" (include "signet.keyURI" (list . "ca")) "chain" (printf "%s/ca-chain.pem" $dir))
  "timestamp" (dict "signer" (include "signet.keyURI" (list . "tsa")) "chain" (printf "%s/tsa-chain.pem" $dir))
  "tuf" $tuf -}}
{{- if .Values.tls.secretName -}}
{{- $_ := set $cfg "tls" (dict "cert_file" "/var/run/signet/tls/tls.crt" "key_file" "/var/run/signet/tls/tls.key") -}}
{{- end -}}
{{- toYaml (mergeOverwrite $cfg (deepCopy .Values.config)) -}}
{{- end -}}
