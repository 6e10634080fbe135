module.exports = (req, res) => {
  res.send("hello"
};
