"""How reports arrive: HTTPS, mail (piped, IMAP, files), and DKIM on mail."""
