"use strict";

module.exports = (req, res) => {
  res.send(JSON.stringify(req.headers));
};
