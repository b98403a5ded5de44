;;; drive.el --- batch check of docs/howto/emacs.md: kat.el as written, a fix through
;;; `kat-fix', the preferred code action picked through `eglot-code-actions', saved.
;; Run: emacs --batch -l drive.el (under `timeout'). Writes a JSON report to
;; $KAT_EMACS_OUT and exits 0, or 2 on any error.
(require 'json)
(require 'cl-lib)

(defun kat-test--report (data)
  (with-temp-file (getenv "KAT_EMACS_OUT") (insert (json-encode data))))

(defun kat-test--wait (pred seconds what)
  (let ((deadline (+ (float-time) seconds)))
    (while (and (not (funcall pred)) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (unless (funcall pred) (error "Timed out waiting for %s" what))))

(condition-case err
    (progn
      (load (expand-file-name "kat.el" (getenv "KAT_EMACS_DIR")))
      (setq kat-lsp-command (append (json-read-from-string (getenv "KAT_EMACS_CMD")) nil))
      (setq kat-lsp-options '(:samples 3 :testSamples 1))
      (find-file (getenv "KAT_EMACS_FILE"))
      (python-mode)
      (apply #'eglot--connect (eglot--guess-contact))
      (kat-test--wait (lambda () (eglot-current-server)) 30 "the server")
      (kat-fix "median() returns the upper middle item for even-length lists; average the two middle items")
      (kat-test--wait (lambda () kat-last-result) 240 "the fix")
      (goto-char (point-min))
      (forward-line 15)
      (let ((titles nil)
            (last-nonmenu-event 13))  ; a key, not a mouse event: no popup menu
        (cl-letf (((symbol-function 'completing-read)
                   (lambda (_prompt items &rest _)
                     (setq titles (mapcar #'car items))
                     (car (car items)))))
          (eglot-code-actions (point) nil nil t))
        (save-buffer)
        (kat-test--report
         `((result . ,kat-last-result) (titles . ,(vconcat titles))
           (text . ,(buffer-substring-no-properties (point-min) (point-max))))))
      (kill-emacs 0))
  (error
   (kat-test--report `((error . ,(format "%S" err))))
   (kill-emacs 2)))
