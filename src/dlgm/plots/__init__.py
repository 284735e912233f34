"""Figures of each paper: functions that take data and return (figure, caption); the commands read files and save through dlgm.figures."""
