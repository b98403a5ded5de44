;;; kat.el --- kat-lsp through eglot (Emacs 28 with eglot 1.9+, or Emacs 29+)
;; Load it from init.el: (load "~/.emacs.d/kat.el"). docs/howto/emacs.md explains it;
;; the batch test (tests/lsp/test_emacs.py) runs exactly this file.
(require 'eglot)
(require 'jsonrpc)

(defvar kat-lsp-command '("kat-lsp" "serve")
  "How to start the server.")
(defvar kat-lsp-options '(:samples 4)
  "kat-lsp settings sent as initializationOptions (camelCase, docs/reference/settings.md).")
(defvar kat-last-result nil
  "The result of the last `kat-fix': (:runId ... :candidates [...]).")

(defun kat-lsp-contact (&optional _interactive)
  "The eglot contact of kat-lsp."
  (append kat-lsp-command (list :initializationOptions kat-lsp-options)))

(add-to-list 'eglot-server-programs '((python-mode python-ts-mode) . kat-lsp-contact))

(defun kat--command (command arguments &optional on-success)
  "Run the server COMMAND with ARGUMENTS (a vector) without blocking Emacs."
  (jsonrpc-async-request (eglot--current-server-or-lose) :workspace/executeCommand
                         (list :command command :arguments arguments)
                         :timeout 86400
                         :success-fn (or on-success #'ignore)
                         :error-fn (lambda (err) (message "KAT: %s" (plist-get err :message)))))

(defun kat-fix (issue)
  "Fix ISSUE in the current project. The candidates then show up as code
actions (M-x eglot-code-actions) in the files they change."
  (interactive "sIssue to fix: ")
  (kat--command "kat.lsp.fixIssue" (vector (list :issue issue))
                (lambda (result)
                  (setq kat-last-result result)
                  (let ((candidates (plist-get result :candidates)))
                    (message "KAT run %s: %d candidate(s)%s" (plist-get result :runId)
                             (length candidates)
                             (if (> (length candidates) 0)
                                 (format "; best: %s. Pick one: M-x eglot-code-actions"
                                         (plist-get (aref candidates 0) :title))
                               ""))))))

(defun kat-cancel ()
  "Cancel the runs of this session that are in flight."
  (interactive)
  (kat--command "kat.lsp.listRuns" []
                (lambda (runs)
                  (seq-doseq (run runs)
                    (when (equal (plist-get run :status) "running")
                      (kat--command "kat.lsp.cancel"
                                    (vector (list :runId (plist-get run :runId)))))))))

(provide 'kat)
;;; kat.el ends here
